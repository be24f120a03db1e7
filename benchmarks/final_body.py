"""The final body of a cross-validated contrastive run: tuned again on every example, or the mean of the folds'.

With few labels the train stage tunes a body per fold to choose the strategy and the epochs, then
(``train.contrastive.final_body: tune``) tunes a fourth on every example for the final model: at 8
examples per class, a third of the stage's time. ``fold_average`` instead averages the folds'
bodies, each tuned on two thirds of the examples from the same pretrained weights, and trains the
final head on every example over that body. This script runs the default pipeline both ways on
the same labelled sample and scores each on the training rows the sample left out, never the test
table, as ``cross_validate_below.py`` does.

The rule, fixed before the first run: ``fold_average`` becomes the default if its mean macro-F1 over
the seeds is at most 1 point below tuning again, or above it, on both datasets at every size run.

    .venv/bin/python benchmarks/final_body.py                          # 8 and 16 per class, 3 seeds
    .venv/bin/python benchmarks/final_body.py --sizes 8 --seeds 0      # one quick pair

Results go to benchmarks/results/final_body.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from few_shot import DATASETS, SOURCE, row_settings  # this folder is on sys.path when run as a script
from undrawn_rows import drawn_and_undrawn, paired_summary, score_on_undrawn

from tlpipe.artifacts import write_json, write_text
from tlpipe.sources import fetch_snapshot

RESULTS = Path(__file__).resolve().parent / "results" / "final_body.json"
VARIANTS = ("fold_average", "tune")  # the cheaper first: when the folds choose a head-only strategy, both are one run
PAIR_TUNED = {"contrastive", "lexical_contrastive"}


def run(variant: str, seed: int, labelled: Any, undrawn: Any, snapshot: Path, scratch: Path) -> dict[str, Any]:
    """The default train stage with ``final_body: variant`` on ``labelled``, scored on the undrawn rows."""
    split, train = row_settings("default", seed)
    train = train.model_copy(update={"contrastive": train.contrastive.model_copy(update={"final_body": variant})})
    return score_on_undrawn(split, train, labelled, undrawn, snapshot, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[8, 16], help="labelled examples per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        snapshot = Path(scratch) / "snapshot"
        fetch_snapshot(SOURCE, snapshot)
        tables = {dataset: DATASETS[dataset]() for dataset in args.datasets}
        for size in args.sizes:
            for dataset, (train, _test) in tables.items():
                for seed in args.seeds:
                    labelled, undrawn = drawn_and_undrawn(train, size, seed)
                    first = None
                    for variant in VARIANTS:
                        if first and first["chose"] not in PAIR_TUNED:  # no body was tuned: the same computation
                            result = {**first, "same_run_as": VARIANTS[0]}
                        else:
                            result = run(variant, seed, labelled, undrawn, snapshot, Path(scratch))
                        first = first or result
                        runs.append({"dataset": dataset, "size": size, "seed": seed, "variant": variant, **result})
                        print(
                            f"{dataset:<16} {size:>3}/class seed {seed} {variant:<13} undrawn macro-F1 "
                            f"{result['undrawn_macro_f1']:.3f} on {len(undrawn)} rows  {result['seconds']:5.0f}s  "
                            f"chose {result['chose']}",
                            flush=True,
                        )
                        report(args.output, runs, quiet=True)
    report(args.output, runs)


def report(path: Path, runs: list[dict[str, Any]], quiet: bool = False) -> None:
    """Per dataset and size: each variant's mean ± std over seeds, the paired difference, the train seconds."""
    lines = [
        "# The final body: mean of the folds' bodies against tuning again (macro-F1 on the undrawn training rows)",
        "",
        "| dataset | per class | seeds | fold_average | tune | fold_average - tune (per seed) "
        "| seconds, fold_average / tune |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = paired_summary(runs, VARIANTS, key="variant")
    for item in summary:
        cells = " | ".join(f"{item[f'{v}_mean']:.3f} ± {item[f'{v}_std']:.3f}" for v in VARIANTS)
        per_seed = ", ".join(f"{d:+.3f}" for d in item["differences"])
        lines.append(
            f"| {item['dataset']} | {item['size']} | {len(item['seeds'])} | {cells} "
            f"| {item['difference_mean']:+.3f} ({per_seed}) | {item['seconds_ratio']:.2f} |"
        )
    adopt = bool(summary) and all(item["difference_mean"] >= -0.01 for item in summary)
    lines += ["", f"Rule (at most 1 point below tuning again everywhere): {'met' if adopt else 'not met'}.", ""]
    write_json(path, {"command": "benchmarks/final_body.py " + " ".join(sys.argv[1:]), "summary": summary,
                      "rule_met": adopt, "runs": runs})  # fmt: skip
    write_text(path.with_suffix(".md"), "\n".join(lines))
    if not quiet:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
