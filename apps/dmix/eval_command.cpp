// `dmix eval`: how well a checkpoint does on a dataset's test split (top-1 and top-5 error).
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/options.h"
#include "dmix/training.h"

namespace dmix::app {

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Top-1/top-5 error of a checkpoint on a dataset's test split");
  struct Options {
    ModelOptions model;
    ImageOptions images;
    SplitOptions split;
    RunOptions run;
    JsonOption json;
  };
  auto o = std::make_shared<Options>();
  o->model.add_to(*cmd);
  o->images.add_to(*cmd, dataset_names_text(), "the checkpoint's, else fashion-mnist");
  o->split.add_to(*cmd);
  o->run.add_to(*cmd);
  o->json.add_to(*cmd);
  on_run(cmd, [o] {
    const char* op = "eval";
    const Device device = o->run.resolve();
    LoadedModel m = o->model.load(device, op);
    const std::string dataset = o->images.dataset_for(m, "fashion-mnist");
    const augment::Dataset test = o->split.load(dataset, m, op);
    augment::DataLoader loader(test, o->split.loader_options(test, o->images.image_size_for(dataset, m)));
    const Evaluation e = evaluate(*m.model, loader);
    if (o->json.on) {
      const nlohmann::json j = {{"images", e.images}, {"top1_error", e.top1_error}, {"top5_error", e.top5_error}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s on %s (%lld images): top-1 error %.2f%%, top-5 error %.2f%%\n", o->model.weights.c_str(),
                  dataset.c_str(), (long long)e.images, e.top1_error, e.top5_error);
    }
    return 0;
  });
}

}  // namespace dmix::app
