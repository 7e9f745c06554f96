#!/usr/bin/env python3
"""Puts `dmix bench` figures beside PyTorch's for the same workloads: one Markdown table.

  python3 scripts/compare-torch.py TORCH_JSON DMIX_OUTPUT [DMIX_OUTPUT ...]

TORCH_JSON is what ../shared/bench/torch_reference.py or scripts/torch_cuda_reference.py
prints (figures under "ops" and "models"). Each DMIX_OUTPUT is what `dmix bench ...` prints,
either with --json or as its "  key  value" lines (the logs scripts/gpu-check.sh keeps).

dmix's variants of a workload are paired with PyTorch's one figure: a key carrying
_cudnn_legacy, _cudnn_graph or _handwritten before its measure (conv3x3_..._cudnn_graph_fwd_ms)
or _tiled (sgemm_1024_tiled_gflops) is compared with the key without it. The ratio is
always "how many times PyTorch's speed dmix reaches": PyTorch time / dmix time for _ms
figures, dmix / PyTorch for rates (_gflops, _gbps, _ips). Figures PyTorch does not have
are listed without a ratio. Needs only the standard library.
"""
import json
import os
import re
import sys

VARIANTS = ("_cudnn_legacy", "_cudnn_graph", "_handwritten", "_tiled")
RATES = ("_gflops", "_gbps", "_ips")
LINE = re.compile(r"^\s+([a-z0-9_]+)\s+([-+0-9.eE]+|inf|nan)\s*$")


def flatten(obj):
    """Numeric leaves of a figures object, under "ops" / "models" or at the top."""
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(flatten(value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def read_dmix(path):
    text = open(path).read()
    try:
        return flatten(json.loads(text))
    except ValueError:
        figures = {}
        for line in text.splitlines():
            m = LINE.match(line)
            if m:
                figures[m.group(1)] = float(m.group(2))
        return figures


def base_key(key):
    """The PyTorch key of a dmix figure, and the dmix variant ("" for the default)."""
    for v in VARIANTS:
        if v in key:
            return key.replace(v, "", 1), v[1:]
    return key, ""


def ratio(key, dmix, torch):
    if dmix <= 0 or torch <= 0:
        return None
    if key.endswith("_ms"):
        return torch / dmix
    if key.endswith(RATES):
        return dmix / torch
    return None


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    try:
        torch = flatten(json.load(open(argv[1])))
    except (OSError, ValueError) as e:
        sys.stderr.write(f"compare-torch: cannot read PyTorch figures from {argv[1]}: {e}\n")
        return 1
    print("| workload | dmix variant | source | dmix | PyTorch | ratio |")
    print("|---|---|---|---|---|---|")
    for path in argv[2:]:
        try:
            figures = read_dmix(path)
        except OSError as e:
            sys.stderr.write(f"compare-torch: cannot read {path}: {e}\n")
            return 1
        source = os.path.basename(path)
        for key in sorted(figures):
            base, variant = base_key(key)
            value = figures[key]
            if base in torch:
                r = ratio(base, value, torch[base])
                shown = f"{r:.2f}" if r is not None else ""
                print(f"| {base} | {variant or 'default'} | {source} | {value:.6g} | {torch[base]:.6g} | {shown} |")
            else:
                print(f"| {key} | | {source} | {value:.6g} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
