// `dmix bench ops` and `dmix bench --model`: the workloads of
// ../shared/bench/torch_reference.py, timed the same way (median of timed repetitions
// after warm-up), so `--json` output can be put beside the PyTorch script's "ops" and
// "models" objects key for key.
//
// --device cpu|cuda[:N] picks where they run. On a GPU every timed repetition ends with
// a device synchronize (kernels are queued asynchronously; the clock must stop when the
// work is done, as torch.cuda.synchronize() does), and the keys stay those of the
// PyTorch script, so a CUDA run compares with the script run on the same GPU. `bench ops`
// on a GPU adds what the CUDA backend's own targets are read from:
//   sgemm_<n>_tiled_gflops          the handwritten GEMM (kernels/cuda/gemm_tiled.cu), beside cuBLAS
//   <conv>_handwritten_fwd_ms ...   the handwritten convolution, beside cuDNN
//   add_f32_64M_gbps, relu_f32_64M_gbps, batchnorm_64ch_56x56_b256_{fwd,bwd}_gbps
//                                   achieved bandwidth: the bytes an op must move at least
//                                   (each input read once, each output written once) per second.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/dmix/bench_timing.h"
#include "apps/dmix/commands.h"
#include "apps/dmix/options.h"
#include "dmix/model_io.h"
#include "engine/ops.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/threads.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/gemm.h"
#include "nn/models/registry.h"
#include "nn/optim.h"

namespace dmix::app {
namespace {

using Figures = std::map<std::string, double>;

// One "  key  value" line a figure, six significant digits (a GPU convolution takes a
// fraction of a millisecond); scripts/compare-torch.py reads these lines.
void print_figure(const std::string& key, double value) { std::printf("  %-48s %14.6g\n", key.c_str(), value); }
void print_figures(const Figures& figures) {
  for (const auto& [key, value] : figures) print_figure(key, value);
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

enum class CudaGemm { cuBLAS, Tiled };

double cuda_sgemm_gflops(const Target& t, int64_t n, CudaGemm which) {
  Generator gen(0);
  const int d = t.device.index;
  Tensor a = gen.normal({n, n}, 0.0, 1.0, DType::f32, t.device), b = gen.normal({n, n}, 0.0, 1.0, DType::f32, t.device);
  Tensor c = Tensor::empty({n, n}, DType::f32, t.device);
  auto run = [&] {
    if constexpr (kernels::cuda::kBuilt) {
      if (which == CudaGemm::cuBLAS)
        kernels::cuda::gemm_cublas(false, false, n, n, n, 1.0f, a.data<float>(), n, b.data<float>(), n, 0.0f,
                                   c.data<float>(), n, d);
      else
        kernels::cuda::gemm_tiled(false, false, n, n, n, 1.0f, a.data<float>(), n, b.data<float>(), n, 0.0f,
                                  c.data<float>(), n, d);
    }
  };
  return 2.0 * double(n) * double(n) * double(n) / median_seconds(t, run, 2, 8) / 1e9;
}

// Forward, and forward + backward for input and weight (as the PyTorch script does).
// `suffix` goes between the workload's name and the figure ("_handwritten").
void conv_case(const Target& t, Figures& out, const std::string& name, const std::string& suffix, int64_t N,
               int64_t C, int64_t K, int64_t H, int64_t k, int64_t pad) {
  Generator gen(1);
  Tensor x = gen.normal({N, C, H, H}, 0.0, 1.0, DType::f32, t.device).set_requires_grad();
  Tensor w = gen.normal({K, C, k, k}, 0.0, 1.0, DType::f32, t.device).set_requires_grad();
  Conv2dOptions opt;
  opt.padding = {pad, pad};
  out[name + suffix + "_fwd_ms"] = 1e3 * median_seconds(t, [&] {
    autograd::NoGradGuard g;
    conv2d(x, w, Tensor(), opt);
  }, 2, 5);
  out[name + suffix + "_fwdbwd_ms"] = 1e3 * median_seconds(t, [&] {
    Tensor y = conv2d(x, w, Tensor(), opt);
    y.backward(Tensor::ones(y.shape(), DType::f32, t.device));
  }, 2, 5);
}

void conv_workloads(const Target& t, Figures& out, const std::string& suffix) {
  conv_case(t, out, "conv3x3_64_64_32x32_b64", suffix, 64, 64, 64, 32, 3, 1);
  conv_case(t, out, "conv1x1_256_64_56x56_b8", suffix, 8, 256, 64, 56, 1, 0);
}

void batchnorm_workload(const Target& t, Figures& out) {
  Generator gen(2);
  Tensor x = gen.normal({64, 64, 32, 32}, 0.0, 1.0, DType::f32, t.device).set_requires_grad();
  Tensor weight = Tensor::ones({64}, DType::f32, t.device).set_requires_grad();
  Tensor bias = Tensor::zeros({64}, DType::f32, t.device).set_requires_grad();
  Tensor running_mean = Tensor::zeros({64}, DType::f32, t.device),
         running_var = Tensor::ones({64}, DType::f32, t.device);
  out["batchnorm_64ch_32x32_b64_fwdbwd_ms"] = 1e3 * median_seconds(t, [&] {
    Tensor y = batch_norm(x, weight, bias, running_mean, running_var, /*training=*/true);
    y.backward(Tensor::ones(y.shape(), DType::f32, t.device));
  }, 2, 5);
}

Figures op_workloads(bool handwritten_gemm) {
  using kernels::cpu::GemmBackend;
  const GemmBackend vendor = handwritten_gemm ? GemmBackend::Handwritten : GemmBackend::OpenBLAS;
  kernels::cpu::set_gemm_backend(vendor);
  Figures out;
  for (int64_t n : {1024, 2048}) out["sgemm_" + std::to_string(n) + "_gflops"] = sgemm_gflops(n, vendor);
  const Target cpu;
  conv_workloads(cpu, out, "");
  batchnorm_workload(cpu, out);
  return out;
}

// Achieved bandwidth of memory-bound work on the GPU: tensors far larger than the L2
// cache (64 Mi floats = 256 MiB; batch norm 205 MiB), so every byte comes from DRAM.
void bandwidth_workloads(const Target& t, Figures& out) {
  constexpr int64_t n = int64_t{64} << 20;
  Generator gen(3);
  Tensor a = gen.normal({n}, 0.0, 1.0, DType::f32, t.device), b = gen.normal({n}, 0.0, 1.0, DType::f32, t.device);
  const double gb = 4.0 * double(n) / 1e9;
  {
    autograd::NoGradGuard no_grad;
    out["add_f32_64M_gbps"] = 3 * gb / median_seconds(t, [&] { add(a, b); }, 2, 10);
    out["relu_f32_64M_gbps"] = 2 * gb / median_seconds(t, [&] { relu(a); }, 2, 10);
  }
  // Batch norm through its kernels, (256, 64, 56, 56): a ResNet stage-1 activation.
  const int64_t N = 256, C = 64, S = 56 * 56;
  const int d = t.device.index;
  Tensor x = gen.normal({N, C, S}, 0.0, 1.0, DType::f32, t.device),
         g = gen.normal({N, C, S}, 0.0, 1.0, DType::f32, t.device);
  Tensor y = Tensor::empty({N, C, S}, DType::f32, t.device), gx = Tensor::empty({N, C, S}, DType::f32, t.device);
  Tensor weight = Tensor::ones({C}, DType::f32, t.device), bias = Tensor::zeros({C}, DType::f32, t.device);
  Tensor mean = Tensor::empty({C}, DType::f32, t.device), invstd = Tensor::empty({C}, DType::f32, t.device);
  Tensor gweight = Tensor::empty({C}, DType::f32, t.device), gbias = Tensor::empty({C}, DType::f32, t.device);
  const double bn_gb = 4.0 * double(N * C * S) / 1e9;
  out["batchnorm_64ch_56x56_b256_fwd_gbps"] = 2 * bn_gb / median_seconds(t, [&] {
    if constexpr (kernels::cuda::kBuilt)
      kernels::cuda::batch_norm_forward_train(x.data<float>(), N, C, S, weight.data<float>(), bias.data<float>(), 1e-5,
                                              y.data<float>(), mean.data<float>(), invstd.data<float>(), nullptr, d);
  }, 2, 10);
  out["batchnorm_64ch_56x56_b256_bwd_gbps"] = 3 * bn_gb / median_seconds(t, [&] {
    if constexpr (kernels::cuda::kBuilt)
      kernels::cuda::batch_norm_backward_train(g.data<float>(), x.data<float>(), N, C, S, mean.data<float>(),
                                               invstd.data<float>(), weight.data<float>(), gx.data<float>(),
                                               gweight.data<float>(), gbias.data<float>(), d);
  }, 2, 10);
}

// Puts the process-wide GPU convolution choices back as they were, also on a throw.
struct ConvChoiceRestorer {
  kernels::cuda::ConvBackend backend = kernels::cuda::conv_backend();
  kernels::cuda::CudnnApi api = kernels::cuda::cudnn_api();
  ~ConvChoiceRestorer() {
    kernels::cuda::set_conv_backend(backend);
    kernels::cuda::set_cudnn_api(api);
  }
};

Figures cuda_op_workloads(const Target& t) {
  Figures out;
  for (int64_t n : {1024, 2048}) {
    out["sgemm_" + std::to_string(n) + "_gflops"] = cuda_sgemm_gflops(t, n, CudaGemm::cuBLAS);
    out["sgemm_" + std::to_string(n) + "_tiled_gflops"] = cuda_sgemm_gflops(t, n, CudaGemm::Tiled);
  }
  // The default convolution backend under the PyTorch script's keys; beside it, when the
  // default is cuDNN, each of cuDNN's two APIs alone and the handwritten kernels.
  using kernels::cuda::ConvBackend;
  using kernels::cuda::CudnnApi;
  conv_workloads(t, out, "");
  if constexpr (kernels::cuda::kBuilt) {
    if (kernels::cuda::conv_backend() == ConvBackend::cuDNN) {
      const ConvChoiceRestorer restore;
      for (CudnnApi api : {CudnnApi::Legacy, CudnnApi::Graph}) {
        kernels::cuda::set_cudnn_api(api);
        conv_workloads(t, out, std::string("_cudnn_") + kernels::cuda::cudnn_api_name(api));
      }
      kernels::cuda::set_conv_backend(ConvBackend::Handwritten);
      conv_workloads(t, out, "_handwritten");
    }
  }
  batchnorm_workload(t, out);
  bandwidth_workloads(t, out);
  return out;
}

struct ModelBenchOptions {
  std::string model;
  int64_t batch = 64, classes = 0, channels = 3, size = 0;
  bool train = false, infer = false, hvp = false, fmnist = false, json = false;
  RunOptions run;
};

// The models workloads of torch_reference.py: a full SGD step (Nesterov, weight decay)
// on soft targets, an inference pass, and a Hessian-vector product, each timed as the
// median of 3 after one warm-up on the CPU. A GPU step takes tens of milliseconds, and
// three of them scatter by 20% and more (one H100 gave 864 to 1233 images/s for the
// same PyramidNet-110 step), so there it is the median of 11 after 3 warm-ups.
Figures model_workloads(const ModelBenchOptions& o, const Target& t) {
  const bool imagenet = o.model.rfind("resnet", 0) == 0 || o.model.find("_imagenet") != std::string::npos;
  const int64_t channels = o.fmnist ? 1 : o.channels;
  const int64_t size = o.size > 0 ? o.size : (o.fmnist ? 28 : (imagenet ? 224 : 32));
  const int64_t classes = o.classes > 0 ? o.classes : (o.fmnist ? 10 : (imagenet ? 1000 : 100));
  const std::string key = o.model + (o.fmnist ? "_fmnist" : "");
  const std::string b = std::to_string(o.batch);
  default_generator().set_state(0, 0);
  // Through build_model, which knows every registered family (darts_* from nas/ included).
  auto model = dmix::build_model({o.model, classes, channels}, t.device);
  Generator gen(5);
  Tensor x = gen.normal({o.batch, channels, size, size}, 0.0, 1.0, DType::f32, t.device);
  Tensor y = softmax(gen.normal({o.batch, classes}, 0.0, 1.0, DType::f32, t.device), 1);
  const int warmup = t.device.is_cuda() ? 3 : 1, reps = t.device.is_cuda() ? 11 : 3;
  Figures out;
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
    out[key + "_train_b" + b + "_ips"] = double(o.batch) / median_seconds(t, [&] {
      sgd.zero_grad();
      soft_cross_entropy((*model)(x), y).backward();
      sgd.step();
    }, warmup, reps);
  }
  if (o.infer || all) {
    model->eval();
    out[key + "_infer_b" + b + "_ips"] = double(o.batch) / median_seconds(t, [&] {
      autograd::NoGradGuard g;
      (*model)(x);
    }, warmup, reps);
  }
  if (o.hvp) {
    model->eval();
    TensorList params = model->parameters(), v;
    for (const Tensor& p : params) v.push_back(gen.normal(p.shape(), 0.0, 1.0, DType::f32, t.device));
    out[key + "_hvp_b" + b + "_ms"] = 1e3 * median_seconds(t, [&] {
      autograd::hvp([&] { return soft_cross_entropy((*model)(x), y); }, params, v);
    }, warmup, reps);
  }
  return out;
}

// "cpu, 8 threads" or "cuda:0, convolution cudnn, TF32 off".
std::string describe(const Target& t) {
  if constexpr (kernels::cuda::kBuilt) {
    if (t.device.is_cuda())
      return t.device.str() + ", convolution " + kernels::cuda::conv_backend_name(kernels::cuda::conv_backend()) +
             ", TF32 " + (kernels::cuda::allow_tf32() ? "on" : "off");
  }
  return "cpu, " + std::to_string(kernels::cpu::num_threads()) + " threads";
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench =
      app.add_subcommand("bench", "Measure speed on this machine (compare with ../shared/bench/torch_reference.py)");
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
  mo->run.add_to(*bench, "Where to run: cpu, cuda or cuda:N");
  bench->add_flag("--json", mo->json, "Print one JSON object with the PyTorch script's `models` keys");
  on_run(bench, [mo] {
    check(!mo->model.empty(), "bench", "give --model NAME, or use `dmix bench ops`");
    const Target target{mo->run.resolve()};
    const auto figures = model_workloads(*mo, target);
    if (mo->json) {
      std::printf("%s\n", nlohmann::json(figures).dump(1).c_str());
    } else {
      std::printf("dmix bench: %s, batch %lld, %s\n", mo->model.c_str(), (long long)mo->batch,
                  describe(target).c_str());
      print_figures(figures);
    }
    return 0;
  });
  auto* ops = bench->add_subcommand("ops", "GEMM, convolution, batch-norm (and on a GPU bandwidth) workloads");
  struct Options {
    bool json = false;
    std::string gemm = "openblas";
    RunOptions run;
  };
  auto opt = std::make_shared<Options>();
  ops->add_flag("--json", opt->json, "Print one JSON object with the PyTorch script's keys");
  ops->add_option("--gemm", opt->gemm, "CPU GEMM behind matmul and conv: openblas or handwritten")
      ->check(CLI::IsMember({"openblas", "handwritten"}));
  opt->run.add_to(*ops,
                  "Where to run: cpu, cuda or cuda:N (on a GPU, both GEMMs and both convolution backends are timed; "
                  "DMIX_CUDA_CONV picks the one under the PyTorch script's keys)");
  on_run(ops, [opt] {
    const Target target{opt->run.resolve()};
    if (target.device.is_cuda()) {
      const auto figures = cuda_op_workloads(target);
      if (opt->json) {
        std::printf("%s\n", nlohmann::json(figures).dump(1).c_str());
        return 0;
      }
      std::printf("dmix bench ops: %s\n", describe(target).c_str());
      print_figures(figures);
      return 0;
    }
    const auto figures = op_workloads(opt->gemm == "handwritten");
    if (opt->json) {
      nlohmann::json j(figures);
      std::printf("%s\n", j.dump(1).c_str());
      return 0;
    }
    std::printf("dmix bench ops: %s, GEMM behind conv: %s\n", describe(target).c_str(), opt->gemm.c_str());
    print_figures(figures);
    using kernels::cpu::GemmBackend;
    const GemmBackend other = opt->gemm == "handwritten" ? GemmBackend::OpenBLAS : GemmBackend::Handwritten;
    for (int64_t n : {1024, 2048})
      print_figure("sgemm_" + std::to_string(n) + "_gflops (" + kernels::cpu::gemm_backend_name(other) + ")",
                   sgemm_gflops(n, other));
    return 0;
  });
}

}  // namespace dmix::app
