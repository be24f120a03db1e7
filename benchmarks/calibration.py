"""Calibration and prediction sets on real data: does the temperature ``calibrate`` fits on held-out logits lower
the test calibration error, and do the prediction sets hold the true label as often as ``serving.coverage`` says?

Runs the default pipeline (validate, prepare, fetch-model, train, calibrate, evaluate: the real suite's ``default``
row, ``harness.pipeline_runs``) on real datasets (``benchmarks/real_data``) at 16 and 64 labelled examples per class
with three seeds, and reads what evaluate measured on the test set (at most 100 examples per class, never used to
fit anything): the expected calibration error (torchmetrics, 15 bins) of the raw softmax and of the calibrated
probabilities, the temperature and what it was fitted on (out-of-fold logits under cross-validation, else the
validation split), and the coverage and mean size of the prediction sets at ``serving.coverage`` (0.9).

The ``development`` row is the same run, then scored again on training-pool rows the sample left out (at most
``DEVELOPMENT_PER_CLASS`` per class, seeded): ``serving.calibration``'s default is chosen on those figures, per
modality, never on the test set's.

    .venv/bin/python benchmarks/calibration.py                         # cached, resumable
    .venv/bin/python benchmarks/calibration.py --datasets rotten_tomatoes --sizes 16 --seeds 0
"""

from __future__ import annotations

import statistics
from typing import Any

from harness import Setting, Study, by_dataset_and_size, main

from tlpipe.calibration import at_bound

DEFAULT = "default"
DEVELOPMENT = "development"
DEVELOPMENT_PER_CLASS = 50


def report(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset and size, means over seeds: test ECE before and after, temperature, coverage and set size."""
    # the development row is the default pipeline too: its test figures count, once per dataset, size and seed
    runs = list(
        {
            (r["dataset"], r["size"], r["seed"]): r
            for r in sorted(records, key=lambda r: r["setting"] == DEFAULT)
            if r["setting"] in (DEFAULT, DEVELOPMENT) and (r["details"] or {}).get("calibration")
        }.values()
    )
    if not runs:
        return []
    lines = ["## Calibration and prediction sets on the test sets (means over seeds)", "",
             "| dataset | per class | seeds | fitted on | temperature | ECE softmax | ECE calibrated | NLL softmax "
             "| NLL calibrated | coverage (target 0.9) | mean set size | empty sets |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (dataset, size), group in by_dataset_and_size((r["dataset"], r["size"], r["details"]) for r in runs):
        calibration = [d["calibration"] for d in group]
        sets = [d["prediction_sets"]["test"] for d in group]
        fitted = ", ".join(sorted({c["fitted_on"].split(" (")[0].replace("the ", "") for c in calibration}))
        cells = [
            fitted,
            _mean([c["temperature"] for c in calibration], 2),
            _mean([c["test"]["ece_before"] for c in calibration], 3),
            _mean([c["test"]["ece_after"] for c in calibration], 3),
            _mean([c["test"]["nll_before"] for c in calibration], 3),
            _mean([c["test"]["nll_after"] for c in calibration], 3),
            _mean([s["coverage"] for s in sets], 3),
            _mean([s["mean_set_size"] for s in sets], 2),
            _mean([s["empty_share"] for s in sets], 3),
        ]
        lines.append(f"| {dataset} | {size} | {len(group)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def development_report(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset and size: ECE and NLL before and after on the unused training rows, and how many runs the
    temperature helped there (what ``serving.calibration``'s default is chosen on)."""
    keyed = [(r["dataset"], r["size"], r["details"]["development"]) for r in records
             if (r["details"] or {}).get("development")]  # fmt: skip
    if not keyed:
        return []
    lines = ["## Calibration on unused training rows (what serving.calibration's default is chosen on)", "",
             "ECE served: the calibrated figure, or the softmax's where the temperature stopped at its bound "
             "(`tlpipe.calibration.at_bound`, which calibrate refuses; these runs predate that rule).", "",
             "| dataset | per class | seeds | rows | temperature | at bound | ECE softmax | ECE calibrated "
             "| ECE served | lower ECE served in | NLL softmax | NLL served | lower NLL served in "
             "| coverage (target 0.9) | mean set size |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (dataset, size), group in by_dataset_and_size(keyed):
        calibration = [d["calibration"] for d in group]
        sets = [d["prediction_sets"]["test"] for d in group]
        fitted = [c["test"] for c in calibration]
        refused = [at_bound(c["temperature"]) for c in calibration]
        served = [
            {"ece": f["ece_before" if r else "ece_after"], "nll": f["nll_before" if r else "nll_after"]}
            for f, r in zip(fitted, refused, strict=True)
        ]
        cells = [
            _mean([d["examples"] for d in group], 0),
            _mean([c["temperature"] for c in calibration], 2),
            f"{sum(refused)} of {len(refused)}",
            _mean([f["ece_before"] for f in fitted], 3),
            _mean([f["ece_after"] for f in fitted], 3),
            _mean([v["ece"] for v in served], 3),
            f"{sum(v['ece'] < f['ece_before'] for v, f in zip(served, fitted, strict=True))} of {len(fitted)}",
            _mean([f["nll_before"] for f in fitted], 3),
            _mean([v["nll"] for v in served], 3),
            f"{sum(v['nll'] < f['nll_before'] for v, f in zip(served, fitted, strict=True))} of {len(fitted)}",
            _mean([s["coverage"] for s in sets], 3),
            _mean([s["mean_set_size"] for s in sets], 2),
        ]
        lines.append(f"| {dataset} | {size} | {len(group)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _mean(values: list[float], digits: int) -> str:
    return f"{statistics.fmean(values):.{digits}f}"


STUDY = Study(
    name="calibration",
    title="Calibration on real data: test macro-F1 of the default pipeline (the temperature changes no prediction)",
    description=__doc__,
    worker="harness.pipeline_runs:run",
    datasets=("rotten_tomatoes", "openclipart", "mnist", "spam_assassin"),
    settings=(Setting(DEFAULT, {}), Setting(DEVELOPMENT, {"dev": DEVELOPMENT_PER_CLASS})),
    sizes=(16, 64),
    seeds=(0, 1, 2),
    reference=DEFAULT,
    sections=lambda records: [*report(records), *development_report(records)],
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
