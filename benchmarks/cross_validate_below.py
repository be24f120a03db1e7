"""Where ``split.cross_validate_below`` should sit: held-out choice against k-fold choice, scored on training rows.

Above the threshold ``prepare`` holds 20% of the labels out to choose the strategy and epochs, and
the final model never sees them; below it, k-fold cross-validation chooses and the final model
trains on every label, for ``split.folds + 1`` runs of each candidate. This script measures both
sides of that trade at the sizes where the threshold could fall: the shipped params.yaml with
``auto``, once choosing on a held-out split (``cross_validate_below: 0``) and once by
cross-validation (the threshold above the size), on the same seeded sample of a dataset's
training table. Each is scored on the rows of the training table the sample did not draw, never
on the test table, so the threshold is chosen on training data. Times are the train stage's, the
two methods side by side in one run.

    .venv/bin/python benchmarks/cross_validate_below.py                 # the plan below, 3 seeds
    .venv/bin/python benchmarks/cross_validate_below.py --seeds 0 --plan work_requests:64

Results go to benchmarks/results/cross_validate_below.json (rewritten after every run) and .md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from few_shot import DATASETS, SOURCE, row_settings  # this folder is on sys.path when run as a script
from undrawn_rows import drawn_and_undrawn, score_on_undrawn

from tlpipe.artifacts import write_json, write_text
from tlpipe.sources import fetch_snapshot

RESULTS = Path(__file__).resolve().parent / "results" / "cross_validate_below.json"
# Sizes that leave at least 12 undrawn training rows in every class to score on (tickets: 60 in the smallest).
PLAN = ["support_tickets:32", "support_tickets:48", "work_requests:32", "work_requests:64"]
METHODS = ("holdout", "cross_validation")


def run(method: str, seed: int, size: int, labelled: pd.DataFrame, scored: pd.DataFrame, snapshot: Path,
        scratch: Path) -> dict[str, Any]:  # fmt: skip
    split, train = row_settings("default", seed)
    split = split.model_copy(update={"cross_validate_below": 0 if method == "holdout" else size + 1})
    result = score_on_undrawn(split, train, labelled, scored, snapshot, scratch)
    assert result["model_selection"] == method, result["model_selection"]
    return result


def report(runs: list[dict[str, Any]], output: Path, command: str) -> str:
    lines = [
        "# Held-out choice against cross-validated choice: macro-F1 on the training rows the sample left out",
        "",
        "Mean ± std over seeds; train-stage seconds; what `auto` kept.",
        "",
        "| dataset | per class | undrawn rows | holdout | cross-validation | difference | time ratio (cv / holdout) |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = []
    for dataset, size in dict.fromkeys((run["dataset"], run["size"]) for run in runs):
        by_method = {m: [r for r in runs if (r["dataset"], r["size"], r["method"]) == (dataset, size, m)]
                     for m in METHODS}  # fmt: skip
        seeds = sorted({r["seed"] for r in by_method["holdout"]} & {r["seed"] for r in by_method["cross_validation"]})
        if not seeds:
            continue
        paired = {m: sorted((r for r in by_method[m] if r["seed"] in seeds), key=lambda r: r["seed"]) for m in METHODS}
        scores = {m: [r["undrawn_macro_f1"] for r in paired[m]] for m in METHODS}
        seconds = {m: statistics.fmean(r["seconds"] for r in paired[m]) for m in METHODS}
        differences = [cv - ho for ho, cv in zip(scores["holdout"], scores["cross_validation"], strict=True)]
        item = {
            "dataset": dataset, "size": size, "seeds": seeds, "undrawn_rows": paired["holdout"][0]["undrawn_rows"],
            **{f"{m}_mean": statistics.fmean(scores[m]) for m in METHODS},
            **{f"{m}_std": statistics.stdev(scores[m]) if len(seeds) > 1 else 0.0 for m in METHODS},
            "difference_mean": statistics.fmean(differences), "differences": differences,
            "time_ratio": seconds["cross_validation"] / seconds["holdout"],
            "chose": {m: [r["chose"] for r in paired[m]] for m in METHODS},
        }  # fmt: skip
        summary.append(item)
        cells = [
            f"{item[f'{m}_mean']:.3f} ± {item[f'{m}_std']:.3f} ({seconds[m]:.0f} s; {', '.join(item['chose'][m])})"
            for m in METHODS
        ]
        lines.append(
            f"| {dataset} | {size} | {item['undrawn_rows']} | {' | '.join(cells)} | "
            f"{item['difference_mean']:+.3f} ({', '.join(f'{d:+.3f}' for d in differences)}) | "
            f"{item['time_ratio']:.2f} |"
        )
    write_json(output, {"command": command, "summary": summary, "runs": runs})
    table = "\n".join(lines) + "\n"
    write_text(output.with_suffix(".md"), table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", nargs="+", default=PLAN, help="dataset:examples-per-class pairs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    command = "benchmarks/cross_validate_below.py " + " ".join(sys.argv[1:])
    plan = [(name, int(size)) for name, _, size in (item.partition(":") for item in args.plan)]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        snapshot = scratch / "snapshot"
        fetch_snapshot(SOURCE, snapshot)
        for dataset, size in plan:
            train, _ = DATASETS[dataset]()  # the test table is never read
            for seed in args.seeds:
                labelled, undrawn = drawn_and_undrawn(train, size, seed)
                for method in METHODS:
                    result = run(method, seed, size, labelled, undrawn, snapshot, scratch)
                    runs.append({"dataset": dataset, "size": size, "seed": seed, "method": method,
                                 "undrawn_rows": len(undrawn), **result})  # fmt: skip
                    print(f"{dataset} {size}/class seed {seed} {method:<16} macro-F1 on undrawn rows "
                          f"{result['undrawn_macro_f1']:.3f}  {result['seconds']:.0f} s  chose {result['chose']}",
                          flush=True)  # fmt: skip
                    report(runs, args.output, command)
    print(report(runs, args.output, command))


if __name__ == "__main__":
    main()
