"""Judging a setting on training data alone: train on a labelled sample, score on the training rows it left out.

``few_shot.py`` draws its labelled samples from a dataset's training table; the rows a sample did
not draw are labelled data that neither the train stage nor the test table ever saw. The
benchmarks that choose a default (``cross_validate_below.py``, ``final_body.py``,
``fold_count.py``) run the train stage two ways on the same sample and score both on those rows,
so no default is chosen on a test split. This module holds what they share.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from few_shot import train_and_score  # this folder is on sys.path when run as a script

from tlpipe.config import SplitConfig, TrainConfig
from tlpipe.datasets import LABEL, examples_per_class


def drawn_and_undrawn(train: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labelled sample ``examples_per_class`` draws, and the training rows it leaves out."""
    drawn = pd.concat(rows.sample(n=min(size, len(rows)), random_state=seed) for _, rows in train.groupby(LABEL))
    labelled = drawn.reset_index(drop=True)
    assert labelled.equals(examples_per_class(train, size, seed)), "examples_per_class draws differently now"
    return labelled, train.drop(index=drawn.index).reset_index(drop=True)


def score_on_undrawn(
    split: SplitConfig, train: TrainConfig, labelled: pd.DataFrame, undrawn: pd.DataFrame, snapshot: Path,
    scratch: Path,
) -> dict[str, Any]:  # fmt: skip
    """The train stage with these settings on ``labelled`` in a fresh project under ``scratch``, scored on
    ``undrawn`` (``undrawn_macro_f1``, ``undrawn_predicted``), with its time and choices."""
    work = Path(tempfile.mkdtemp(dir=scratch))
    try:
        result = train_and_score(split, train, labelled, undrawn, snapshot, work)
    finally:
        shutil.rmtree(work)
    # Scored on undrawn training rows, not the test table: named so.
    return {"undrawn_" + key.removeprefix("test_") if key.startswith("test_") else key: value
            for key, value in result.items()}  # fmt: skip


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
