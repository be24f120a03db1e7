"""How many folds should choose with few labels? ``split.folds`` 5 against 3, judged on training rows.

With 8 labelled examples per class, each of 3 folds trains on about 5 per class and validates on
about 3, so cross-validation scores every candidate at two thirds of the data the final model
gets. A strategy that gains more from the last few labels than the others (the lexical probe,
whose wordpiece channel needs to have seen a word to use it) is ranked too low: on the work
requests at 8 per class the folds put it last of four candidates. More folds train each fold
closer to the final size, at one more run of every candidate for each fold added; for the
default at 8 per class that is one more contrastive tuning each, the stage's costly part.

For each dataset of ``harness/text_datasets.py``, size and seed, this script runs the default (params.yaml as
shipped) and the two probes named alone with each fold count on the same labelled sample, and
scores each on the training rows the sample did not draw (``harness/text_datasets.py``), never the test
table. It reports the default's score with each fold count, what it chose, and for every
candidate how far its cross-validated score fell below what its final model scored on the
undrawn rows (the folds' pessimism, per strategy).

The rule, fixed before the first run: 5 folds replace 3 if the default's mean over the seeds is
at least 1 point higher with 5 on both datasets at 8 per class, and ``default_run_cost.py`` then
keeps the 8-per-class run within 2x the previous default's time.

    .venv/bin/python benchmarks/fold_count.py                       # 8 per class, 3 seeds, about 25 min
    .venv/bin/python benchmarks/fold_count.py --folds 3 8 --seeds 0

Results go to benchmarks/results/fold_count.json (rewritten after every run) and .md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from itertools import product
from pathlib import Path
from typing import Any

import pandas as pd
from harness.text_datasets import DATASETS, drawn_and_undrawn
from harness.train_runs import SOURCE, configs, train_and_score

from tlpipe.artifacts import write_json, write_text
from tlpipe.config import SplitConfig, TrainConfig
from tlpipe.sources import fetch_snapshot

RESULTS = Path(__file__).resolve().parent / "results" / "fold_count.json"
ROWS = ("default", "linear_probe", "lexical_probe")  # the probes alone: seconds each, for their own folds' pessimism


def run(row: str, folds: int, seed: int, labelled: Any, undrawn: Any, snapshot: Path, scratch: Path) -> dict[str, Any]:
    """``row`` (the default, or a probe named alone) with ``split.folds: folds`` on ``labelled``, scored on the
    undrawn rows."""
    split, train = configs({} if row == "default" else {"train": {"strategy": row}}, seed)
    result = score_on_undrawn(split.model_copy(update={"folds": folds}), train, labelled, undrawn, snapshot, scratch)
    assert result["model_selection"] == "cross_validation", result["model_selection"]
    return result


def score_on_undrawn(
    split: SplitConfig, train: TrainConfig, labelled: pd.DataFrame, undrawn: pd.DataFrame, snapshot: Path,
    scratch: Path,
) -> dict[str, Any]:  # fmt: skip
    """The train stage with these settings on ``labelled`` in a fresh project under ``scratch``, scored on
    ``undrawn`` (``undrawn_macro_f1``, ``undrawn_predicted``), with its time and choices."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        result = train_and_score(split, train, labelled, undrawn, snapshot, Path(work))
    # Scored on undrawn training rows, not the test table: named so.
    return {
        "undrawn_macro_f1": result["score"]["macro_f1"], "seconds": time.perf_counter() - started,
        **result["details"], "undrawn_predicted": result["predictions"], "undrawn_actual": result["actual"],
    }  # fmt: skip


def paired_summary(runs: list[dict[str, Any]], variants: tuple[str, str], key: str) -> list[dict[str, Any]]:
    """Per dataset and size, the two ``variants`` (values of ``run[key]``) on the seeds both ran: mean ± std of
    their undrawn macro-F1, the first minus the second per seed and on average, and their train-seconds ratio."""
    first, second = variants
    summary = []
    for dataset, size in dict.fromkeys((run["dataset"], run["size"]) for run in runs):
        by_variant = {
            variant: {r["seed"]: r for r in runs if (r["dataset"], r["size"], r[key]) == (dataset, size, variant)}
            for variant in variants
        }
        seeds = sorted(set(by_variant[first]) & set(by_variant[second]))
        if not seeds:
            continue
        scores = {v: [by_variant[v][s]["undrawn_macro_f1"] for s in seeds] for v in variants}
        seconds = {v: statistics.fmean(by_variant[v][s]["seconds"] for s in seeds) for v in variants}
        differences = [a - b for a, b in zip(scores[first], scores[second], strict=True)]
        summary.append(
            {
                "dataset": dataset,
                "size": size,
                "seeds": seeds,
                **{f"{v}_mean": statistics.fmean(scores[v]) for v in variants},
                **{f"{v}_std": statistics.stdev(scores[v]) if len(seeds) > 1 else 0.0 for v in variants},
                "differences": differences,
                "difference_mean": statistics.fmean(differences),
                "seconds_ratio": seconds[first] / seconds[second],
                "chose": {v: [by_variant[v][s]["chose"] for s in seeds] for v in variants},
            }
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[8], help="labelled examples per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--folds", nargs=2, type=int, default=[5, 3], metavar=("TRIED", "SHIPPED"),
        help="the fold count tried, then the one it is compared with (split.folds as shipped)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    command = "benchmarks/fold_count.py " + " ".join(sys.argv[1:])
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        snapshot = scratch / "snapshot"
        fetch_snapshot(SOURCE, snapshot)
        tables = {dataset: DATASETS[dataset]()[0] for dataset in args.datasets}  # the test tables are never read
        for size, dataset, seed in product(args.sizes, args.datasets, args.seeds):
            labelled, undrawn = drawn_and_undrawn(tables[dataset], size, seed)
            for folds, row in product(args.folds, ROWS):
                result = run(row, folds, seed, labelled, undrawn, snapshot, scratch)
                runs.append({"dataset": dataset, "size": size, "seed": seed, "folds": folds, "row": row,
                             "undrawn_rows": len(undrawn), **result})  # fmt: skip
                print(f"{dataset:<16} {size:>3}/class seed {seed} {folds} folds {row:<13} undrawn macro-F1 "
                      f"{result['undrawn_macro_f1']:.3f}  {result['seconds']:5.0f}s  chose {result['chose']}",
                      flush=True)  # fmt: skip
                report(runs, args.folds, args.output, command, quiet=True)
    report(runs, args.folds, args.output, command)


def pessimism(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per dataset, size, fold count and strategy: the mean of its cross-validated score minus its final model's
    undrawn score, over the runs whose final model is that strategy (a probe the default chose is its own row's)."""
    groups: dict[tuple[str, int, int, str], list[float]] = {}
    for run in runs:
        strategy = run["chose"]
        if run["row"] == "default" and strategy in ROWS:
            continue
        groups.setdefault((run["dataset"], run["size"], run["folds"], strategy), []).append(
            run["training_data_macro_f1"][strategy] - run["undrawn_macro_f1"]
        )
    return [
        {"dataset": d, "size": s, "folds": k, "strategy": name, "runs": len(gaps),
         "cv_minus_undrawn": statistics.fmean(gaps)}
        for (d, s, k, name), gaps in sorted(groups.items())
    ]  # fmt: skip


def row_means(runs: list[dict[str, Any]]) -> dict[tuple[str, int, int, int], list[str]]:
    """Per dataset, size, undrawn-row count and fold count: each row's undrawn macro-F1 as "mean ± std"."""
    scores: dict[tuple[str, int, int, int], dict[str, list[float]]] = {}
    for run in runs:
        key = (run["dataset"], run["size"], run["undrawn_rows"], run["folds"])
        scores.setdefault(key, {}).setdefault(run["row"], []).append(run["undrawn_macro_f1"])
    return {
        key: [
            f"{statistics.fmean(by_row[row]):.3f} ± {statistics.stdev(by_row[row]) if len(by_row[row]) > 1 else 0:.3f}"
            if row in by_row
            else "-"
            for row in ROWS
        ]
        for key, by_row in scores.items()
    }


def report(runs: list[dict[str, Any]], folds: list[int], output: Path, command: str, quiet: bool = False) -> None:
    """The default with each fold count side by side, then every candidate's cross-validated pessimism."""
    tried, shipped = (f"{k} folds" for k in folds)
    defaults = [{**run, "variant": f"{run['folds']} folds"} for run in runs if run["row"] == "default"]
    summary = paired_summary(defaults, (tried, shipped), key="variant")
    lines = [
        "# Fold count: the default's macro-F1 on the undrawn training rows",
        "",
        f"| dataset | per class | seeds | {tried} | {shipped} | {tried} - {shipped} (per seed) "
        f"| train seconds, {tried} / {shipped} | chose ({tried}; {shipped}) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for item in summary:
        cells = " | ".join(f"{item[f'{v}_mean']:.3f} ± {item[f'{v}_std']:.3f}" for v in (tried, shipped))
        per_seed = ", ".join(f"{d:+.3f}" for d in item["differences"])
        chose = "; ".join(", ".join(item["chose"][v]) for v in (tried, shipped))
        lines.append(
            f"| {item['dataset']} | {item['size']} | {len(item['seeds'])} | {cells} "
            f"| {item['difference_mean']:+.3f} ({per_seed}) | {item['seconds_ratio']:.2f} | {chose} |"
        )
    lines += ["", "Every row on the undrawn rows (mean ± std over seeds):", "",
              "| dataset | per class | undrawn rows | folds | " + " | ".join(ROWS) + " |",
              "|---|---|---|---|" + "---|" * len(ROWS)]  # fmt: skip
    for (dataset, size, rows, folds_run), cells in row_means(runs).items():
        lines.append(f"| {dataset} | {size} | {rows} | {folds_run} | " + " | ".join(cells) + " |")
    sizes = {item["size"] for item in summary}
    adopt = 8 in sizes and all(item["difference_mean"] >= 0.01 for item in summary if item["size"] == 8)
    lines += [
        "",
        f"Rule (at 8 per class, {tried} at least 1 point above {shipped} on every dataset): "
        f"{'met' if adopt else 'not met'}.",
        "",
        "## How far each candidate's cross-validated score fell below its final model's undrawn score",
        "",
        "Cross-validated minus undrawn macro-F1, mean over the runs whose final model is that strategy "
        "(the default's choice, or the probe named alone); negative: the folds were pessimistic.",
        "",
        "| dataset | per class | folds | strategy | runs | cross-validated - undrawn |",
        "|---|---|---|---|---|---|",
    ]
    gaps = pessimism(runs)
    lines += [
        f"| {g['dataset']} | {g['size']} | {g['folds']} | {g['strategy']} | {g['runs']} "
        f"| {g['cv_minus_undrawn']:+.3f} |"
        for g in gaps
    ]
    write_json(output, {"command": command, "summary": summary, "rule_met": adopt, "pessimism": gaps, "runs": runs})
    write_text(output.with_suffix(".md"), "\n".join(lines) + "\n")
    if not quiet:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
