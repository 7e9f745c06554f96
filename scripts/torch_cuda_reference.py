#!/usr/bin/env python3
"""PyTorch+cuDNN timings of the workloads `dmix bench ops|--model --device cuda` measures.

The GPU twin of ../shared/bench/torch_reference.py (whose PyramidNet and soft-target loss it
imports, so both sides build the same network): the same keys, each timed the same way as
dmix times them (median of timed repetitions after warm-up, a device synchronize ending
each repetition), fp32 with TF32 off as dmix's default, cuDNN's autotuner on (the fastest
algorithm PyTorch can pick, the figure dmix's cuDNN path is held against).

Run on the GPU machine, right beside `bash scripts/gpu-check.sh`:
  python3 scripts/torch_cuda_reference.py [--reference DIR] [--deterministic]
DIR holds torch_reference.py. PyTorch's default lets cuDNN pick non-deterministic
algorithms (the twin of `DMIX_CUDNN_DETERMINISTIC=0 dmix bench ops`); --deterministic sets
torch.backends.cudnn.deterministic, the twin of dmix's default.
Prints one JSON object. dmix never needs PyTorch; this script only gives the ratios.
"""
import json, os, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

ref_dir = sys.argv[sys.argv.index("--reference") + 1] if "--reference" in sys.argv else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")
sys.path.insert(0, ref_dir)
from torch_reference import PyramidNet, soft_ce  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.deterministic = "--deterministic" in sys.argv
dev = torch.device("cuda")
torch.manual_seed(0)


def timeit(fn, warmup=2, reps=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def ops():
    out = {}
    for n in (1024, 2048):
        a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
        out[f"sgemm_{n}_gflops"] = 2 * n ** 3 / timeit(lambda: torch.mm(a, b), 2, 8) / 1e9

    def conv_case(name, N, C, K, H, k, pad):
        x = torch.randn(N, C, H, H, device=dev, requires_grad=True)
        w = torch.randn(K, C, k, k, device=dev, requires_grad=True)
        def fb():
            y = F.conv2d(x, w, padding=pad); y.backward(torch.ones_like(y))
        def f():
            with torch.no_grad(): F.conv2d(x, w, padding=pad)
        out[f"{name}_fwd_ms"] = timeit(f) * 1e3
        out[f"{name}_fwdbwd_ms"] = timeit(fb) * 1e3
    conv_case("conv3x3_64_64_32x32_b64", 64, 64, 64, 32, 3, 1)
    conv_case("conv1x1_256_64_56x56_b8", 8, 256, 64, 56, 1, 0)

    bn = nn.BatchNorm2d(64).to(dev); x = torch.randn(64, 64, 32, 32, device=dev, requires_grad=True)
    def bnfb():
        y = bn(x); y.backward(torch.ones_like(y))
    out["batchnorm_64ch_32x32_b64_fwdbwd_ms"] = timeit(bnfb) * 1e3

    # Achieved bandwidth, counted as dmix counts it: each input read once, each output written once.
    n = 64 << 20; gb = 4 * n / 1e9
    a, b = torch.randn(n, device=dev), torch.randn(n, device=dev)
    out["add_f32_64M_gbps"] = 3 * gb / timeit(lambda: torch.add(a, b), 2, 10)
    out["relu_f32_64M_gbps"] = 2 * gb / timeit(lambda: torch.relu(a), 2, 10)
    N, C, S = 256, 64, 56
    x = torch.randn(N, C, S, S, device=dev); g = torch.randn_like(x)
    w, bias = torch.ones(C, device=dev), torch.zeros(C, device=dev)
    bn_gb = 4 * x.numel() / 1e9
    fwd = lambda: torch.ops.aten.native_batch_norm(x, w, bias, None, None, True, 0.1, 1e-5)
    _, mean, invstd = fwd()
    out["batchnorm_64ch_56x56_b256_fwd_gbps"] = 2 * bn_gb / timeit(fwd, 2, 10)
    bwd = lambda: torch.ops.aten.native_batch_norm_backward(g, x, w, None, None, mean, invstd, True, 1e-5,
                                                            [True, True, True])
    out["batchnorm_64ch_56x56_b256_bwd_gbps"] = 3 * bn_gb / timeit(bwd, 2, 10)
    return out


def train_step_ips(model, batch, shape, classes, reps=11):
    model = model.to(dev).train()
    x = torch.randn(batch, *shape, device=dev)
    y = F.softmax(torch.randn(batch, classes, device=dev), 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    def step():
        opt.zero_grad(); soft_ce(model(x), y).backward(); opt.step()
    return batch / timeit(step, 3, reps)


def models():
    import torchvision
    out = {}
    out["resnet50_train_b32_ips"] = train_step_ips(torchvision.models.resnet50(), 32, (3, 224, 224), 1000)
    out["pyramidnet110_a64_train_b64_ips"] = train_step_ips(PyramidNet(110, 64, 100), 64, (3, 32, 32), 100)
    return out


if __name__ == "__main__":
    res = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "ops": ops(), "models": models()}
    print(json.dumps(res, indent=1))
