// `dmix bench ops`: the op workloads of ../shared/bench/torch_reference.py, timed the
// same way (median of timed repetitions after warm-up), so `--json` output can be put
// beside the PyTorch script's "ops" object key for key.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "engine/ops.h"
#include "kernels/cpu/gemm.h"
#include "nn/models/registry.h"
#include "nn/optim.h"
#include "kernels/cpu/threads.h"

namespace dmix::app {
namespace {

double median_seconds(const std::function<void()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ts;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ts.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ts.begin(), ts.end());
  return reps % 2 ? ts[reps / 2] : 0.5 * (ts[reps / 2 - 1] + ts[reps / 2]);
}

double sgemm_gflops(int64_t n, kernels::cpu::GemmBackend backend) {
  Generator gen(0);
  Tensor a = gen.normal({n, n}), b = gen.normal({n, n}), c = Tensor::empty({n, n});
  auto run = [&] {
    if (backend == kernels::cpu::GemmBackend::OpenBLAS) {
      kernels::cpu::gemm_openblas(false, false, n, n, n, 1.0f, a.data<float>(), n, b.data<float>(), n, 0.0f,
                                  c.data<float>(), n);
    } else {
      kernels::cpu::gemm_handwritten(false, false, n, n, n, 1.0f, a.data<float>(), n, b.data<float>(), n, 0.0f,
                                     c.data<float>(), n);
    }
  };
  return 2.0 * double(n) * double(n) * double(n) / median_seconds(run, 2, 8) / 1e9;
}

// Forward, and forward + backward for input and weight (as the PyTorch script does).
void conv_case(std::map<std::string, double>& out, const std::string& name, int64_t N, int64_t C, int64_t K,
               int64_t H, int64_t k, int64_t pad) {
  Generator gen(1);
  Tensor x = gen.normal({N, C, H, H}).set_requires_grad();
  Tensor w = gen.normal({K, C, k, k}).set_requires_grad();
  Conv2dOptions opt;
  opt.padding = {pad, pad};
  out[name + "_fwd_ms"] = 1e3 * median_seconds([&] {
    autograd::NoGradGuard g;
    conv2d(x, w, Tensor(), opt);
  }, 2, 5);
  out[name + "_fwdbwd_ms"] = 1e3 * median_seconds([&] {
    Tensor y = conv2d(x, w, Tensor(), opt);
    y.backward(Tensor::ones(y.shape()));
  }, 2, 5);
}

std::map<std::string, double> op_workloads(bool handwritten_gemm) {
  using kernels::cpu::GemmBackend;
  const GemmBackend vendor = handwritten_gemm ? GemmBackend::Handwritten : GemmBackend::OpenBLAS;
  kernels::cpu::set_gemm_backend(vendor);
  std::map<std::string, double> out;
  for (int64_t n : {1024, 2048}) out["sgemm_" + std::to_string(n) + "_gflops"] = sgemm_gflops(n, vendor);
  conv_case(out, "conv3x3_64_64_32x32_b64", 64, 64, 64, 32, 3, 1);
  conv_case(out, "conv1x1_256_64_56x56_b8", 8, 256, 64, 56, 1, 0);
  {
    Generator gen(2);
    Tensor x = gen.normal({64, 64, 32, 32}).set_requires_grad();
    Tensor weight = Tensor::ones({64}).set_requires_grad(), bias = Tensor::zeros({64}).set_requires_grad();
    Tensor running_mean = Tensor::zeros({64}), running_var = Tensor::ones({64});
    out["batchnorm_64ch_32x32_b64_fwdbwd_ms"] = 1e3 * median_seconds([&] {
      Tensor y = batch_norm(x, weight, bias, running_mean, running_var, /*training=*/true);
      y.backward(Tensor::ones(y.shape()));
    }, 2, 5);
  }
  return out;
}

struct ModelBenchOptions {
  std::string model;
  int64_t batch = 64, classes = 0, channels = 3, size = 0;
  bool train = false, infer = false, hvp = false, fmnist = false, json = false;
  int threads = 0;
};

// The models workloads of torch_reference.py: a full SGD step (Nesterov, weight decay)
// on soft targets, an inference pass, and a Hessian-vector product, each timed as the
// median of 3 after one warm-up.
std::map<std::string, double> model_workloads(const ModelBenchOptions& o) {
  const bool imagenet = o.model.rfind("resnet", 0) == 0 || o.model.find("_imagenet") != std::string::npos;
  const int64_t channels = o.fmnist ? 1 : o.channels;
  const int64_t size = o.size > 0 ? o.size : (o.fmnist ? 28 : (imagenet ? 224 : 32));
  const int64_t classes = o.classes > 0 ? o.classes : (o.fmnist ? 10 : (imagenet ? 1000 : 100));
  const std::string key = o.model + (o.fmnist ? "_fmnist" : "");
  const std::string b = std::to_string(o.batch);
  default_generator().set_state(0, 0);
  auto model = nn::make_model(o.model, classes, channels);
  Generator gen(5);
  Tensor x = gen.normal({o.batch, channels, size, size});
  Tensor y = softmax(gen.normal({o.batch, classes}), 1);
  std::map<std::string, double> out;
  out[key + "_params"] = double(model->num_parameters());
  const bool all = !o.train && !o.infer && !o.hvp;
  if (o.train || all) {
    nn::SgdOptions so;
    so.lr = 0.1;
    so.momentum = 0.9;
    so.nesterov = true;
    so.weight_decay = 1e-4;
    nn::SGD sgd(model->named_parameters(), so);
    model->train();
    out[key + "_train_b" + b + "_ips"] = double(o.batch) / median_seconds([&] {
      sgd.zero_grad();
      soft_cross_entropy((*model)(x), y).backward();
      sgd.step();
    }, 1, 3);
  }
  if (o.infer || all) {
    model->eval();
    out[key + "_infer_b" + b + "_ips"] = double(o.batch) / median_seconds([&] {
      autograd::NoGradGuard g;
      (*model)(x);
    }, 1, 3);
  }
  if (o.hvp) {
    model->eval();
    TensorList params = model->parameters(), v;
    for (const Tensor& p : params) v.push_back(gen.normal(p.shape()));
    out[key + "_hvp_b" + b + "_ms"] = 1e3 * median_seconds([&] {
      autograd::hvp([&] { return soft_cross_entropy((*model)(x), y); }, params, v);
    }, 1, 3);
  }
  return out;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Measure speed on this machine (compare with ../shared/bench/torch_reference.py)");
  bench->require_subcommand(0, 1);
  auto mo = std::make_shared<ModelBenchOptions>();
  bench->add_option("--model", mo->model, "Model to time (training step, inference, HVP); without it use `bench ops`");
  bench->add_option("--batch", mo->batch, "Batch size")->check(positive())->capture_default_str();
  bench->add_flag("--train", mo->train, "Time a training step (images/s)");
  bench->add_flag("--infer", mo->infer, "Time inference (images/s)");
  bench->add_flag("--hvp", mo->hvp, "Time a Hessian-vector product (ms)");
  bench->add_flag("--fmnist", mo->fmnist, "Fashion-MNIST shapes: 1x28x28, 10 classes (keys get _fmnist)");
  bench->add_option("--num-classes", mo->classes, "Classes (default 1000 for ImageNet models, 100 otherwise)");
  bench->add_option("--in-channels", mo->channels, "Input channels")->capture_default_str();
  bench->add_option("--input-size", mo->size, "Input height = width (default 224 ImageNet models, 32 otherwise)");
  bench->add_option("--threads", mo->threads, "CPU threads (default: all cores)")->check(positive());
  bench->add_flag("--json", mo->json, "Print one JSON object with the PyTorch script's `models` keys");
  on_run(bench, [mo] {
    check(!mo->model.empty(), "bench", "give --model NAME, or use `dmix bench ops`");
    if (mo->threads > 0) kernels::cpu::set_num_threads(mo->threads);
    const auto figures = model_workloads(*mo);
    if (mo->json) {
      std::printf("%s\n", nlohmann::json(figures).dump(1).c_str());
    } else {
      std::printf("dmix bench: %s, batch %lld, %d threads\n", mo->model.c_str(), (long long)mo->batch,
                  kernels::cpu::num_threads());
      for (const auto& [key, value] : figures) std::printf("  %-44s %12.2f\n", key.c_str(), value);
    }
    return 0;
  });
  auto* ops = bench->add_subcommand("ops", "GEMM, convolution and batch-norm workloads (ms or GFLOP/s)");
  struct Options {
    bool json = false;
    int threads = 0;
    std::string gemm = "openblas";
    std::string device = "cpu";
  };
  auto opt = std::make_shared<Options>();
  ops->add_flag("--json", opt->json, "Print one JSON object with the PyTorch script's keys");
  ops->add_option("--threads", opt->threads, "CPU threads (default: all cores)")->check(positive());
  ops->add_option("--gemm", opt->gemm, "GEMM behind matmul and conv: openblas or handwritten")
      ->check(CLI::IsMember({"openblas", "handwritten"}));
  ops->add_option("--device", opt->device, "cpu (cuda once the CUDA op suite lands)");
  on_run(ops, [opt] {
    check(opt->device == "cpu", "bench", "device '", opt->device, "' is not benchmarked yet (only cpu)");
    if (opt->threads > 0) kernels::cpu::set_num_threads(opt->threads);
    const auto figures = op_workloads(opt->gemm == "handwritten");
    if (opt->json) {
      nlohmann::json j(figures);
      std::printf("%s\n", j.dump(1).c_str());
      return 0;
    }
    std::printf("dmix bench ops: %d threads, GEMM behind conv: %s\n", kernels::cpu::num_threads(), opt->gemm.c_str());
    for (const auto& [key, value] : figures) std::printf("  %-40s %10.2f\n", key.c_str(), value);
    using kernels::cpu::GemmBackend;
    const GemmBackend other = opt->gemm == "handwritten" ? GemmBackend::OpenBLAS : GemmBackend::Handwritten;
    for (int64_t n : {1024, 2048})
      std::printf("  %-40s %10.2f\n", ("sgemm_" + std::to_string(n) + "_gflops (" + kernels::cpu::gemm_backend_name(other) + ")").c_str(),
                  sgemm_gflops(n, other));
    return 0;
  });
}

}  // namespace dmix::app
