#!/usr/bin/python3
"""PGD-10 (L-inf, 8/255, 2/255, random start) in PyTorch on a dmix checkpoint, for the
images/s figure scripts/bench/pgd_vs_torch.sh puts beside `dmix attack`'s.

  pgd_torch.py CHECKPOINT --samples N --batch B --threads T [--no-random-start] [--reference DIR]

The checkpoint (a pyramidnet*_basic or bottleneck PyramidNet from `dmix train`, PyTorch's
parameter names under "model.") is loaded into the PyramidNet of ../shared/bench/torch_reference.py
(imported, not copied), behind the dataset's normalisation, as torchattacks recommends. The
attack is torchattacks' PGD when the package imports, else the same steps written here.
The images are the first N of Fashion-MNIST's test split, in [0, 1]. The timed part is what
`dmix attack --json`'s "seconds" covers: clean logits, the attack, adversarial logits.
Prints one JSON object: images/s, clean and robust top-1 error (percent), seconds.
"""
import gzip, json, os, re, struct, sys, time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
import torch
import torch.nn as nn
import torch.nn.functional as F


def arg(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, arg("--reference", os.path.join(here, "..", "..", "..", "shared", "bench")))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "apps"))
from torch_reference import PyramidNet  # noqa: E402
from safetensors_io import read  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # augment/transforms.cpp: Fashion-MNIST's normalisation


def fashion_mnist_test(n):
    with gzip.open(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz")) as f:
        _, count, h, w = struct.unpack(">IIII", f.read(16))
        x = torch.frombuffer(bytearray(f.read(n * h * w)), dtype=torch.uint8).float().div(255).view(n, 1, h, w)
    with gzip.open(os.path.join(FMNIST, "t10k-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        y = torch.frombuffer(bytearray(f.read(n)), dtype=torch.uint8).long()
    return x, y


def load_model(path):
    tensors, meta = read(path)
    name = meta["model"]
    m = re.fullmatch(r"pyramidnet(\d+)_a(\d+)(_basic)?", name)
    if not m:
        sys.exit("pgd_torch.py: %s holds %s; only CIFAR-stem PyramidNets are ported" % (path, name))
    net = PyramidNet(int(m.group(1)), int(m.group(2)), int(meta["num_classes"]), int(meta["in_channels"]),
                     bottleneck=m.group(3) is None)
    state = {k[len("model."):]: torch.tensor(v[2]).view(v[1]) for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit("pgd_torch.py: state dict mismatch: missing %s, unexpected %s" % (missing, unexpected))
    return net, name


class Normalized(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net((x - MEAN) / STD)


def pgd_by_hand(model, x, y, eps=8 / 255, alpha=2 / 255, steps=10, random_start=True):
    """torchattacks/attacks/pgd.py, step for step."""
    adv = x.clone().detach()
    if random_start:
        adv = torch.clamp(adv + torch.empty_like(adv).uniform_(-eps, eps), 0, 1).detach()
    for _ in range(steps):
        adv.requires_grad = True
        grad = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)[0]
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.clamp(x + torch.clamp(adv - x, -eps, eps), 0, 1).detach()
    return adv


def main():
    path = sys.argv[1]
    n, batch, threads = int(arg("--samples", 512)), int(arg("--batch", 256)), int(arg("--threads", 2))
    random_start = "--no-random-start" not in sys.argv
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, name = load_model(path)
    model = Normalized(net).eval()
    try:
        import torchattacks
        atk = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=random_start)
        attack, impl = atk, "torchattacks " + torchattacks.__version__
    except ImportError:
        attack, impl = (lambda a, b: pgd_by_hand(model, a, b, random_start=random_start)), "by hand"
    x, y = fashion_mnist_test(n)
    # Parameters keep requires_grad, as torchattacks leaves them; dmix's attack freezes its own.
    clean_wrong = robust_wrong = 0
    start = time.perf_counter()
    for i in range(0, n, batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        with torch.no_grad():
            clean_wrong += int((model(xb).argmax(1) != yb).sum())
        adv = attack(xb, yb)
        with torch.no_grad():
            robust_wrong += int((model(adv).argmax(1) != yb).sum())
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": impl, "torch": torch.__version__, "threads": threads, "model": name, "samples": n,
                      "batch": batch, "random_start": random_start, "seconds": seconds, "images_per_s": n / seconds,
                      "clean_top1_error": 100.0 * clean_wrong / n, "robust_top1_error": 100.0 * robust_wrong / n}))


if __name__ == "__main__":
    main()
