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

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Measure speed on this machine (compare with ../shared/bench/torch_reference.py)");
  bench->require_subcommand(1);
  auto* ops = bench->add_subcommand("ops", "GEMM, convolution and batch-norm workloads (ms or GFLOP/s)");
  struct Options {
    bool json = false;
    int threads = 0;
    std::string gemm = "openblas";
    std::string device = "cpu";
  };
  auto opt = std::make_shared<Options>();
  ops->add_flag("--json", opt->json, "Print one JSON object with the PyTorch script's keys");
  ops->add_option("--threads", opt->threads, "CPU threads (default: all cores)")->check(CLI::PositiveNumber);
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
