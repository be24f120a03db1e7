"""Active learning on real data: which query strategy of ``tlpipe.active_learning`` saves the most labels?

On each dataset of the real suite (``benchmarks/real_data``), three seeds: start from 4 labelled examples per
class (seeded), then in rounds label 2 × classes more examples of the unlabelled pool (the training pool less
what is labelled, at most ``POOL_CAP`` rows, seeded), chosen by the setting's strategy, until 32 × classes are
labelled. Each round fits the real suite's tuned probe (logistic regression on the default body's normalised
frozen features, C chosen on the labelled rows' folds) and scores it on the dataset's test set; the strategies
read only the pool's features and the probe's probabilities on it, never a test row or an unlabelled label.

The score is the test macro-F1 at the last round; the details hold the curve. The label savings (report): the
fewest labels at which a strategy's mean curve reaches random choice's final mean score, against random's.

    .venv/bin/python benchmarks/active_learning.py               # every dataset; cached, resumable
    .venv/bin/python benchmarks/active_learning.py --datasets reuters_r8 --seeds 0
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from harness import Setting, Study, main
from harness.pipeline_runs import probe_rows, tuned_probe
from harness.train_runs import merged, scored_result
from sklearn.metrics import f1_score

from tlpipe.active_learning import STRATEGIES, select

START, STEP, END = 4, 2, 32  # labelled examples per class: first round, added per round, last round
POOL_CAP = 2000
RANDOM = "random"


def run(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: rounds of the cell's query strategy from START to END labels per class; the last round's scores."""
    rows = probe_rows(cell, START, POOL_CAP)
    x_all, y_all, names, y_test = rows.x, rows.y, rows.names, rows.y_test
    labelled, unlabelled = list(rows.labelled), list(rows.unlabelled)
    strategy, budget, curve = cell["params"]["strategy"], STEP * len(names), []
    while True:
        probe = tuned_probe(x_all[labelled], y_all[labelled].tolist())
        predicted = probe.predict(rows.x_test)
        curve.append([len(labelled), float(f1_score(y_test, predicted, average="macro", zero_division=0))])
        if len(labelled) >= END * len(names) or not unlabelled:
            break
        picks = select(strategy, budget, probe.predict_proba(x_all[unlabelled]), x_all[unlabelled],
                       x_all[labelled], seed=cell["seed"] * 1000 + len(labelled))  # fmt: skip
        picked = set(picks)
        labelled += [unlabelled[i] for i in picks]
        unlabelled = [row for i, row in enumerate(unlabelled) if i not in picked]
    result = scored_result([int(i) for i in predicted], y_test, names)
    return merged(result, {"details": {"curve": curve}})


def report(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset: each strategy's labels to reach random's final mean score, the saving against random, and the
    mean score over the rounds."""
    lines = ["## Label savings against random choice", "",
             "| dataset | strategy | labels to reach random's final score | saving | mean macro-F1 over the rounds |",
             "|---|---|---|---|---|"]  # fmt: skip
    for dataset in sorted({r["dataset"] for r in records}):
        curves = _mean_curves([r for r in records if r["dataset"] == dataset])
        if RANDOM not in curves:
            continue
        final_labels, target = curves[RANDOM][-1]
        for strategy, curve in sorted(curves.items()):
            reached = next((labels for labels, score in curve if score >= target), None)
            saving = f"{1 - reached / final_labels:+.0%}" if reached else "not reached"
            area = statistics.fmean(score for _, score in curve)
            lines.append(f"| {dataset} | {strategy} | {reached or '-'} of {final_labels} | {saving} | {area:.3f} |")
    note = (
        "Curves are means over the seeds that ran; a saving is the share of random's labels spared; the mean over "
        "the rounds (the area under the learning curve) does not hang on one round, as the first crossing does."
    )
    return [*lines, "", note, ""]


def _mean_curves(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    by_strategy: dict[str, list[list[list[float]]]] = {}
    for record in records:
        by_strategy.setdefault(record["setting"], []).append(record["details"]["curve"])
    means = {}
    for strategy, curves in by_strategy.items():
        rounds = min(len(curve) for curve in curves)
        means[strategy] = [
            (int(curves[0][i][0]), statistics.fmean(curve[i][1] for curve in curves)) for i in range(rounds)
        ]
    return means


STUDY = Study(
    name="active_learning",
    title=f"Active learning on real data: test macro-F1 of the tuned probe at {END} labels per class",
    description=__doc__,
    worker="active_learning:run",
    datasets=("rotten_tomatoes", "spam_assassin", "reuters_r8", "mnist", "tabler_icons"),
    settings=tuple(Setting(name, {"strategy": name}) for name in STRATEGIES),
    sizes=(START,),
    seeds=(0, 1, 2),
    reference=RANDOM,
    sections=report,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
