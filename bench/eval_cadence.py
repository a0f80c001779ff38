#!/usr/bin/env python3
"""How the automatic evaluation cadence covers the pruning, preset by preset.

Runs `sparsity-explorer run --preset NAME --backend flex --json` for each preset and
prints one markdown row each: the distinct overall sparsity levels the `pruned` events
reach, how many of them have an evaluation within 0.01, the evaluations by phase, the
subset size of the cut-following ones, the share of the wall time spent evaluating, the
wall time and the final accuracy.

    python3 bench/eval_cadence.py [--bin PATH] [--repeat N] [PRESET ...]

Standard library only.
"""

import argparse
import json
import subprocess
import sys
from collections import Counter

DEFAULT_PRESETS = [
    "quick-demo",
    "seed-polynomial",
    "lenet300-agp90",
    "seed-fashion",
    "seed-2by4",
    "lottery-ticket",
]


def run(binary, preset):
    out = subprocess.run(
        [binary, "run", "--preset", preset, "--backend", "flex", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def measure(events):
    levels = sorted({round(e["sparsity"], 6) for e in events if e["event"] == "pruned"})
    evals = [e for e in events if e["event"] == "evaluation"]
    covered = sum(1 for l in levels if any(abs(e["sparsity"] - l) <= 0.01 for e in evals))
    phases = Counter(e.get("phase", "?") for e in evals)
    subsets = sorted({e["subset"] for e in evals if e.get("subset") is not None})
    summary = next(e for e in events if e["event"] == "summary")
    return {
        "levels": len(levels),
        "covered": covered,
        "phases": phases,
        "subset": subsets,
        "share": summary["eval_s"] / summary["wall_s"],
        "wall": summary["wall_s"],
        "eval_s": summary["eval_s"],
        "accuracy": summary["final_accuracy"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="target/release/sparsity-explorer")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("presets", nargs="*", default=DEFAULT_PRESETS)
    args = parser.parse_args()
    print(
        "| preset | levels evaluated | after cut / recovered / other | subset | "
        "eval share | wall time | final accuracy |"
    )
    print("|---|---|---|---|---|---|---|")
    for preset in args.presets:
        runs = [measure(run(args.bin, preset)) for _ in range(args.repeat)]
        m = runs[-1]
        other = sum(n for p, n in m["phases"].items() if p not in ("after_cut", "recovered"))
        shares = ", ".join(f"{r['share']:.1%}" for r in runs)
        walls = ", ".join(f"{r['wall']:.2f} s" for r in runs)
        subset = "/".join(str(s) for s in m["subset"]) or "-"
        print(
            f"| `{preset}` | {m['covered']} of {m['levels']} | "
            f"{m['phases']['after_cut']} / {m['phases']['recovered']} / {other} | "
            f"{subset} | {shares} | {walls} | {m['accuracy']:.4f} |"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
