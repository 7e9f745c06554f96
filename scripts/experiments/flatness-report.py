#!/usr/bin/env python3
"""Gathers the results of scripts/experiments/flatness.sh into the flatness report.

    /usr/bin/python3 scripts/experiments/flatness-report.py [RUNS_DIR [DOCS_DIR]]

RUNS_DIR (default runs/flatness) holds results/ (eval-M.json, hessian-M.json per method M,
sigma.json and eigen2d.json for all of them) and plots/ (dmix's own figures). Writes to
DOCS_DIR (default docs/experiments):
  flatness.csv  one row per method: test error, loss on the probe subset, top eigenvalues,
                trace +- standard error, and the sigma-curve's mean loss and accuracy at each sigma;
  flatness.md   the part between its "results" markers replaced by the tables, the flatness
                rankings with the paper's claim checked against them, and the figures (the
                method text around the markers is kept as written);
  flatness/     the figures, copied from RUNS_DIR/plots, and esd.png, the spectral densities of
                all methods on one log-scale figure (needs matplotlib: Debian's
                python3-matplotlib, i.e. /usr/bin/python3; without it that one figure is skipped).
Only the standard library besides matplotlib; a run still going is reported as it stands.
"""
import csv
import glob
import json
import os
import shutil
import sys

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
NAMES = {"none": "no mixing", "cutmix": "CutMix", "dcutmix": "DCutMix", "mixup": "Mixup", "dmixup": "DMixup"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def methods_of(results):
    """The methods in the order the experiment ran them (sigma.json's order), then any others."""
    order = []
    sigma = load(os.path.join(results, "sigma.json"))
    if sigma:
        order = [c["label"] for c in sigma["checkpoints"]]
    for path in sorted(glob.glob(os.path.join(results, "eval-*.json"))):
        m = os.path.basename(path)[len("eval-"):-len(".json")]
        if m not in order:
            order.append(m)
    return order


def gather(results):
    sigma = load(os.path.join(results, "sigma.json")) or {"sigmas": [], "checkpoints": []}
    curves = {c["label"]: c for c in sigma["checkpoints"]}
    rows = []
    for m in methods_of(results):
        ev = load(os.path.join(results, f"eval-{m}.json")) or {}
        h = load(os.path.join(results, f"hessian-{m}.json")) or {}
        c = curves.get(m, {})
        rows.append({"method": m, "test_error": ev.get("top1_error"), "test_images": ev.get("images"),
                     "loss": h.get("loss", c.get("loss")), "accuracy": c.get("accuracy"),
                     "top_eigenvalues": h.get("top_eigenvalues", []), "trace": h.get("trace"),
                     "trace_stderr": h.get("trace_stderr"), "trace_samples": h.get("trace_samples"),
                     "hvp_count": h.get("hvp_count"), "hessian_seconds": h.get("seconds"),
                     "probe_images": h.get("images"), "density": h.get("density"),
                     "sigma_loss": c.get("loss_mean", []), "sigma_loss_std": c.get("loss_std", []),
                     "sigma_accuracy": c.get("accuracy_mean", [])})
    return rows, sigma


def fmt(v, spec=".4g"):
    return "" if v is None else format(v, spec)


def write_csv(path, rows, sigmas):
    k = max([len(r["top_eigenvalues"]) for r in rows] + [0])
    header = (["method", "test_error", "test_images", "probe_images", "probe_loss"] +
              [f"eigenvalue_{i + 1}" for i in range(k)] + ["trace", "trace_stderr", "trace_samples"] +
              [f"loss_sigma_{s:g}" for s in sigmas] + [f"loss_std_sigma_{s:g}" for s in sigmas] +
              [f"accuracy_sigma_{s:g}" for s in sigmas])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            pad = lambda v, n: list(v) + [""] * (n - len(v))
            w.writerow([r["method"], r["test_error"], r["test_images"], r["probe_images"], r["loss"]] +
                       pad(r["top_eigenvalues"], k) + [r["trace"], r["trace_stderr"], r["trace_samples"]] +
                       pad(r["sigma_loss"], len(sigmas)) + pad(r["sigma_loss_std"], len(sigmas)) +
                       pad(r["sigma_accuracy"], len(sigmas)))


def rankings(rows, sigmas):
    """Which method is flattest by each measure, and whether DCutMix is."""
    measures = []

    def by(name, key, text):
        have = [(key(r), r["method"]) for r in rows if key(r) is not None]
        if len(have) < 2:
            return
        have.sort()
        order = f"{NAMES.get(have[0][1], have[0][1])} ({have[0][0]:.4g})"
        for (prev, _), (v, m) in zip(have, have[1:]):
            order += f" {'=' if v == prev else '<'} {NAMES.get(m, m)} ({v:.4g})"
        measures.append((name, have[0][1], f"- {text}: {order}."))

    by("top eigenvalue", lambda r: r["top_eigenvalues"][0] if r["top_eigenvalues"] else None,
       "Top Hessian eigenvalue (sharpness; smaller is flatter)")
    by("trace", lambda r: r["trace"], "Hessian trace (smaller is flatter)")
    if len(sigmas) > 1:
        s = sigmas[-1]
        by("sigma-curve", lambda r: r["sigma_loss"][-1] - r["sigma_loss"][0] if len(r["sigma_loss"]) == len(sigmas)
           else None, f"Loss increase at sigma = {s:g} over the loss at sigma = 0 (smaller is flatter)")
        by("sigma-curve level", lambda r: r["sigma_loss"][-1] if len(r["sigma_loss"]) == len(sigmas) else None,
           f"Loss at sigma = {s:g} (the paper's \"widest and lowest\" reads the level too)")
    by("test error", lambda r: r["test_error"], "Test top-1 error, %")
    lines = [text for _, _, text in measures]
    flat = [(name, best) for name, best, _ in measures if name not in ("test error", "sigma-curve level")]
    if flat and any(r["method"] == "dcutmix" for r in rows):
        won = [name for name, best in flat if best == "dcutmix"]
        lines += ["", f"The paper's claim, \"DCutMix converges to the flattest minimum\", holds here on {len(won)} of "
                  f"{len(flat)} flatness measures" + (f" ({', '.join(won)})." if won else ".")]
    return lines


def results_markdown(rows, sigma, runs, figures):
    sigmas = sigma["sigmas"]
    out = []
    if not rows:
        return ["No results yet: run `scripts/experiments/flatness.sh`."]
    probe = next((r["probe_images"] for r in rows if r["probe_images"]), None)
    test = next((r["test_images"] for r in rows if r["test_images"]), None)
    out += [f"Generated by `scripts/experiments/flatness-report.py` from `{runs}`. Test error on {test} test "
            f"images; Hessian and landscape on the first {probe} test images (eval mode).", ""]
    k = max([len(r["top_eigenvalues"]) for r in rows] + [0])
    out.append("| method | test error, % | loss | " + " | ".join(f"lambda_{i + 1}" for i in range(k)) +
               " | trace +- s.e. (samples) |")
    out.append("|---|---:|---:|" + "---:|" * k + "---:|")
    for r in rows:
        eig = [fmt(v) for v in r["top_eigenvalues"]] + [""] * (k - len(r["top_eigenvalues"]))
        trace = "" if r["trace"] is None else f'{r["trace"]:.4g} +- {fmt(r["trace_stderr"], ".2g")} ({r["trace_samples"]})'
        out.append(f'| {NAMES.get(r["method"], r["method"])} | {fmt(r["test_error"], ".2f")} | {fmt(r["loss"])} | ' +
                   " | ".join(eig) + f" | {trace} |")
    if sigmas:
        out += ["", f"Sigma-curve: mean loss +- std over {sigma.get('draws')} draws of N(0, sigma^2) noise on every "
                "weight (the same draws for every model), and the mean accuracy.", ""]
        out.append("| sigma | " + " | ".join(f'{NAMES.get(r["method"], r["method"])} loss' for r in rows) + " | " +
                   " | ".join(f'{NAMES.get(r["method"], r["method"])} acc.' for r in rows) + " |")
        out.append("|---:|" + "---:|" * (2 * len(rows)))
        for i, s in enumerate(sigmas):
            loss = [f'{r["sigma_loss"][i]:.4f} +- {r["sigma_loss_std"][i]:.4f}' if i < len(r["sigma_loss"]) else ""
                    for r in rows]
            acc = [f'{100 * r["sigma_accuracy"][i]:.2f}%' if i < len(r["sigma_accuracy"]) else "" for r in rows]
            out.append(f"| {s:g} | " + " | ".join(loss) + " | " + " | ".join(acc) + " |")
    out += ["", "Rankings (from the numbers above):", ""] + rankings(rows, sigmas)
    if figures:
        out += ["", "Figures:", ""] + [f"![{title}](flatness/{name})" for name, title in figures]
    return out


def copy_figures(runs, docs, rows):
    """dmix's plots into DOCS/flatness/, and the ESDs of all methods on one figure."""
    target = os.path.join(docs, "flatness")
    os.makedirs(target, exist_ok=True)
    figures = []
    plots = os.path.join(runs, "plots")
    methods = [r["method"] for r in rows]
    wanted = [("sigma.png", "loss under weight noise, all methods"),
              ("sigma-accuracy.png", "accuracy under weight noise, all methods"),
              ("eigen2d.png", "loss along the top-2 Hessian eigenvectors, all methods")]
    for i, m in enumerate(methods):
        surface = "eigen2d-surface.png" if i == 0 else f"eigen2d-surface-{i + 1}.png"
        wanted.append((surface, f"3-D loss surface along the top-2 eigenvectors, {NAMES.get(m, m)}"))
    for m in methods:
        wanted.append((f"esd-{m}.png", f"Hessian spectral density, {NAMES.get(m, m)}"))
    for name, title in wanted:
        src = os.path.join(plots, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(target, name))
            figures.append((name, title))
    if write_esd(os.path.join(target, "esd.png"), rows):
        figures.insert(3, ("esd.png", "Hessian spectral densities of all methods"))
    return figures


def write_esd(path, rows):
    have = [r for r in rows if r["density"]]
    if not have:
        return False
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"flatness-report: matplotlib is not available to {sys.executable}; {path} not written "
              "(run with /usr/bin/python3 and Debian's python3-matplotlib)")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in have:
        d = r["density"]
        ax.semilogy(d["grid"], [v + 1e-7 for v in d["values"]], label=NAMES.get(r["method"], r["method"]))
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (+1e-7, log scale)")
    ax.set_title("Hessian eigenvalue spectral density (SLQ)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path + ".part.png", dpi=110)
    os.replace(path + ".part.png", path)
    plt.close(fig)
    return True


def main():
    runs = sys.argv[1] if len(sys.argv) > 1 else "runs/flatness"
    docs = sys.argv[2] if len(sys.argv) > 2 else "docs/experiments"
    rows, sigma = gather(os.path.join(runs, "results"))
    os.makedirs(docs, exist_ok=True)
    write_csv(os.path.join(docs, "flatness.csv"), rows, sigma["sigmas"])
    figures = copy_figures(runs, docs, rows)
    md = os.path.join(docs, "flatness.md")
    with open(md) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        sys.exit(f"flatness-report: {md} has no {BEGIN} ... {END} markers to fill")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    body = "\n".join(results_markdown(rows, sigma, runs, figures))
    with open(md + ".part", "w") as f:
        f.write(head + BEGIN + "\n" + body + "\n" + END + tail)
    os.replace(md + ".part", md)
    print(f"flatness-report: {len(rows)} methods; wrote {md}, {os.path.join(docs, 'flatness.csv')} and "
          f"{len(figures)} figures in {os.path.join(docs, 'flatness')}")


if __name__ == "__main__":
    main()
