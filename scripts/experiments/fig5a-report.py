#!/usr/bin/env python3
"""Gathers the results of scripts/experiments/fig5a-subsample.sh into the Fig. 5a report.

    /usr/bin/python3 scripts/experiments/fig5a-report.py [RUNS_DIR [DOCS_DIR]]

RUNS_DIR (default runs/fig5a) holds results/*.json, one per finished run, and scores/
(the scoring summary and `dmix bench --infer` of the scoring model). Writes to DOCS_DIR
(default docs/experiments):
  fig5a.csv  one row per (measure, mixing, t): seeds, mean and standard deviation of the
             test top-1 error over seeds, subset size, epochs, steps;
  fig5a.md   the table (test error in %, mean +- std over seeds, t across), the scoring
             speed next to the model's batched inference speed, and the paper's three
             claims checked against the numbers;
  fig5a.png  test error against t, one line per measure (needs matplotlib: Debian's
             python3-matplotlib, i.e. /usr/bin/python3; without it the PNG is skipped).
Only the standard library besides matplotlib; partial results (some seeds or runs
missing) are reported as they stand, with the number of seeds in every cell.
"""
import csv
import glob
import json
import os
import statistics
import sys

MEASURES = ["cv", "mean-low", "mean-high", "std", "random", "mc-dropout", "k-center", "kcenter"]
LABELS = {"cv": "CV (high first)", "mean-low": "mean, low first (easy-only)",
          "mean-high": "mean, high first (hard-only)", "std": "std (high first)", "random": "random",
          "mc-dropout": "MC dropout (entropy)", "kcenter": "K-Center", "k-center": "K-Center"}


def load_results(runs):
    rows = []
    for path in sorted(glob.glob(os.path.join(runs, "results", "*.json"))):
        with open(path) as f:
            r = json.load(f)
        r["error"] = r["eval"]["top1_error"]
        rows.append(r)
    return rows


def aggregate(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["measure"], r["mix"], r["ratio"]), []).append(r)
    out = []
    for (measure, mix, ratio), rs in groups.items():
        errors = [r["error"] for r in rs]
        out.append({"measure": measure, "mix": mix, "ratio": ratio, "seeds": " ".join(str(r["seed"]) for r in rs),
                    "n": len(rs), "mean_error": statistics.fmean(errors),
                    "std_error": statistics.stdev(errors) if len(errors) > 1 else 0.0,
                    "subset_size": rs[0]["subset_size"], "epochs": rs[0]["epochs"], "steps": rs[0]["steps"],
                    "test_images": rs[0]["eval"]["images"]})
    order = {m: i for i, m in enumerate(MEASURES)}
    out.sort(key=lambda g: (g["mix"] != "dcutmix", order.get(g["measure"], 99), g["ratio"]))
    return out


def series_name(g):
    return g["measure"] if g["mix"] == "dcutmix" else f'{g["measure"]}, no mixing' if g["mix"] == "none" else \
        f'{g["measure"]}, {g["mix"]}'


def cell(groups, name, ratio):
    for g in groups:
        if series_name(g) == name and g["ratio"] == ratio:
            return g
    return None


def claims(groups, ratios):
    """The paper's claims, each checked where both sides were measured."""
    lines = []
    small = [t for t in ratios if t <= 0.05]

    def compare(a, b, ts, better):
        wins, total = 0, 0
        for t in ts:
            ga, gb = cell(groups, a, t), cell(groups, b, t)
            if ga and gb:
                total += 1
                wins += (ga["mean_error"] < gb["mean_error"]) == better
        return wins, total

    def verdict(claim, counts):
        wins, total = counts
        if not total:
            return f"- {claim}: not measured yet."
        return f"- {claim}: {'holds' if wins == total else 'does not hold'} (true at {wins} of {total} measured t)."

    lines.append(verdict("High CV beats random at small t (t <= 0.05)", compare("cv", "random", small, True)))
    for m, what in (("mean-low", "easy-only"), ("mean-high", "hard-only")):
        lines.append(verdict(f"{what} ({m}) is worse than random", compare(m, "random", ratios, False)))
    lines.append(verdict("DCutMix beats no mixing when data is scarce (random subsets, t <= 0.05)",
                         compare("random", "random, no mixing", small, True)))
    return lines


def speed(runs):
    try:
        with open(os.path.join(runs, "scores", "scoring.json")) as f:
            s = json.load(f)
        with open(os.path.join(runs, "scores", "bench.json")) as f:
            b = json.load(f)
    except (OSError, json.JSONDecodeError):
        return []
    infer = next((v for k, v in b.items() if k.endswith("_ips")), None)
    line = (f'Scoring {s["images"]} training images with M = {s["draws"]} composites each took '
            f'{s["scoring_s"] / 60:.1f} min ({s["total_s"] / 60:.1f} min with loading): {s["images_per_s"]:.1f} '
            f'images/s, {s["composites_per_s"]:.1f} composites/s')
    if infer:
        line += f'; `dmix bench --infer` of the same model at batch 256: {infer:.1f} images/s'
    return [line + "."]


def write_markdown(path, groups, rows, runs):
    ratios = sorted({g["ratio"] for g in groups})
    names = []
    for g in groups:
        if series_name(g) not in names:
            names.append(series_name(g))
    first = rows[0] if rows else {}
    out = ["# Fig. 5a on Fashion-MNIST: data subsampling by mixing uncertainty", "",
           "Generated by `scripts/experiments/fig5a-report.py` from the runs of "
           "`scripts/experiments/fig5a-subsample.sh` (see its header for the protocol). "
           f"Model {first.get('model', '?')}; every subset trained for a fixed budget of about "
           f"{first.get('steps', '?')} steps of batch 64 with DCutMix (dmix train's defaults) unless marked; "
           f"test top-1 error (%) of the last checkpoint on {first['eval']['images'] if first else '?'} test images, "
           "mean +- std over seeds (n seeds).", ""]
    out.append("| measure | " + " | ".join(f"t = {t:g}" for t in ratios) + " |")
    out.append("|---|" + "---:|" * len(ratios))
    for name in names:
        cells = []
        for t in ratios:
            g = cell(groups, name, t)
            cells.append(f'{g["mean_error"]:.2f} +- {g["std_error"]:.2f} ({g["n"]})' if g else "")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "Subset sizes: " + ", ".join(
        f't = {t:g}: {next(g["subset_size"] for g in groups if g["ratio"] == t)} images' for t in ratios) + ".", ""]
    speed_lines = speed(runs)
    if speed_lines:
        out += speed_lines + [""]
    out += ["The paper's claims, as measured here (means over seeds compared):", ""] + claims(groups, ratios) + [""]
    out += ["![test error against t](fig5a.png)", ""]
    with open(path, "w") as f:
        f.write("\n".join(out))


def write_plot(path, groups):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"fig5a-report: matplotlib is not available to {sys.executable}; {path} not written "
              "(run with /usr/bin/python3 and Debian's python3-matplotlib)")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = []
    for g in groups:
        if series_name(g) not in names:
            names.append(series_name(g))
    for name in names:
        gs = sorted((g for g in groups if series_name(g) == name), key=lambda g: g["ratio"])
        ax.errorbar([g["ratio"] for g in gs], [g["mean_error"] for g in gs], yerr=[g["std_error"] for g in gs],
                    marker="o", capsize=3, linestyle="--" if "," in name else "-",
                    label=LABELS.get(name, name))
    ax.set_xscale("log")
    ratios = sorted({g["ratio"] for g in groups})
    ax.set_xticks(ratios)
    ax.minorticks_off()
    ax.set_xticklabels([f"{t:g}" for t in ratios])
    ax.set_xlabel("fraction t of the training set kept per class")
    ax.set_ylabel("test top-1 error (%)")
    ax.set_title("Fashion-MNIST, training on a subset (paper Fig. 5a)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main():
    runs = sys.argv[1] if len(sys.argv) > 1 else "runs/fig5a"
    docs = sys.argv[2] if len(sys.argv) > 2 else "docs/experiments"
    rows = load_results(runs)
    if not rows:
        sys.exit(f"fig5a-report: no results in {runs}/results")
    groups = aggregate(rows)
    os.makedirs(docs, exist_ok=True)
    fields = ["measure", "mix", "ratio", "n", "seeds", "mean_error", "std_error", "subset_size", "epochs", "steps",
              "test_images"]
    with open(os.path.join(docs, "fig5a.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for g in groups:
            w.writerow({k: (f"{g[k]:.4f}" if isinstance(g[k], float) and k.endswith("error") else g[k])
                        for k in fields})
    write_markdown(os.path.join(docs, "fig5a.md"), groups, rows, runs)
    wrote_png = write_plot(os.path.join(docs, "fig5a.png"), groups)
    print(f"fig5a-report: {len(rows)} runs in {len(groups)} cells; wrote {docs}/fig5a.csv, {docs}/fig5a.md"
          + (f", {docs}/fig5a.png" if wrote_png else ""))


if __name__ == "__main__":
    main()
