// `dmix info`: what a model costs (parameters, forward FLOPs per image), and the model names.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/options.h"
#include "dmix/model_io.h"
#include "nas/eval_network.h"
#include "nn/models/flops.h"
#include "nn/models/registry.h"

namespace dmix::app {

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Parameters and forward FLOPs per image of a model");
  struct Options {
    std::string model;
    int64_t classes = 0, channels = 3, size = 0;
    ArchitectureOptions architecture;
    JsonOption json;
    bool list = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--model", o->model, "Model name");
  cmd->add_option("--num-classes", o->classes, "Classes (default 1000 for ImageNet models, 10 otherwise)");
  cmd->add_option("--in-channels", o->channels, "Input channels")->capture_default_str();
  cmd->add_option("--input-size", o->size, "Input height = width (default 224 for ImageNet models, 32 otherwise)");
  o->architecture.add_to(*cmd);
  o->json.add_to(*cmd, "Print {\"params\": ..., \"flops_per_image\": ...} (darts_*: and params_without_auxiliary)");
  cmd->add_flag("--list", o->list, "List the model names");
  on_run(cmd, [o] {
    if (o->list) {
      nas::register_models();
      for (const auto& n : nn::model_names()) std::printf("%s\n", n.c_str());
      return 0;
    }
    check(!o->model.empty(), "info", "--model is required (or --list)");
    const bool big = imagenet_style(o->model);
    const int64_t classes = o->classes > 0 ? o->classes : (big ? 1000 : 10);
    const int64_t size = o->size > 0 ? o->size : (big ? 224 : 32);
    auto model = build_model({o->model, classes, o->channels, o->architecture.settings(o->model, true)});
    const int64_t params = model->num_parameters();
    // Evaluation mode: the auxiliary head of a darts model does not run, as at test time.
    const int64_t flops = nn::forward_flops_per_image(*model, {o->channels, size, size});
    const auto* darts = dynamic_cast<const nas::EvalNetwork*>(model.get());
    if (o->json.on) {
      nlohmann::json j = {{"params", params}, {"flops_per_image", flops}};
      if (darts) j["params_without_auxiliary"] = darts->num_parameters_without_auxiliary();
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s: %lld parameters, %.3f GFLOPs per %lldx%lldx%lld image, %lld classes\n", o->model.c_str(),
                  (long long)params, double(flops) / 1e9, (long long)o->channels, (long long)size, (long long)size,
                  (long long)classes);
      if (darts)
        std::printf("%lld parameters without the auxiliary head (the figure papers report)\n",
                    (long long)darts->num_parameters_without_auxiliary());
    }
    return 0;
  });
}

}  // namespace dmix::app
