"""Self-training on real data: does an unlabelled pool of 500 examples lift the tuned probe at 8 and 16 labels per
class?

On each dataset of the real suite (``benchmarks/real_data``), three seeds: the labelled sample is the suite's
(``examples_per_class``), and the pool is ``POOL`` other training rows drawn with the seed, their labels hidden.
``labelled only`` is the real suite's tuned probe (logistic regression on the default body's normalised frozen
features, C chosen on the labelled rows' folds). ``self-training`` is ``tlpipe.self_training``: the same probe
pseudo-labels the pool at the threshold its labelled rows' folds chose ("off" among the candidates), and refits.
Nothing is chosen on a test row or on a pool row's hidden label; the report uses the hidden labels only to say how
many pseudo-labels were right.

    .venv/bin/python benchmarks/semi_supervised.py               # every dataset; cached, resumable
    .venv/bin/python benchmarks/semi_supervised.py --datasets reuters_r8 --seeds 0
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from harness import Setting, Study, by_dataset_and_size, main
from harness.pipeline_runs import probe_rows, tuned_probe
from harness.train_runs import merged, scored_result

from tlpipe.self_training import self_train

POOL = 500
LABELLED_ONLY, SELF_TRAINING = "labelled only", "self-training"


def run(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: the tuned probe on the cell's labelled sample, alone or self-trained on the pool."""
    rows = probe_rows(cell, cell["size"], POOL)
    x, y = rows.x[rows.labelled], rows.y[rows.labelled].tolist()
    details: dict[str, Any] = {"pool": len(rows.unlabelled)}
    if cell["params"]["pool"]:
        trained = self_train(x, y, rows.x[rows.unlabelled], seed=cell["seed"])
        model = trained.model
        details |= {"threshold": trained.threshold, "fold_scores": trained.fold_scores,
                    "pseudo_labels": sum(trained.pseudo_labels.values())}  # fmt: skip
        if trained.threshold is not None:
            given = trained.model.transduction_[len(y) :]
            details["pseudo_labels_right"] = int((given[given != -1] == rows.y[rows.unlabelled][given != -1]).sum())
    else:
        model = tuned_probe(x, y)
    predicted = [int(i) for i in model.predict(rows.x_test)]
    return merged(scored_result(predicted, rows.y_test, rows.names), {"details": details})


def report(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset and size: the thresholds the folds chose, and how many pseudo-labels there were and were right."""
    trained = [r for r in records if r["setting"] == SELF_TRAINING]
    if not trained:
        return []
    lines = ["## What self-training did", "",
             "| dataset | per class | thresholds chosen (per seed) | pseudo-labels (mean) | right (mean share) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for (dataset, size), group in by_dataset_and_size((r["dataset"], r["size"], r["details"]) for r in trained):
        chosen = ", ".join("off" if d["threshold"] is None else str(d["threshold"]) for d in group)
        given = statistics.fmean(d["pseudo_labels"] for d in group)
        shares = [d["pseudo_labels_right"] / d["pseudo_labels"] for d in group if d.get("pseudo_labels")]
        right = f"{statistics.fmean(shares):.2f}" if shares else "-"
        lines.append(f"| {dataset} | {size} | {chosen} | {given:.0f} | {right} |")
    note = f"Pool: {POOL} training rows per cell, their labels hidden from the probe and from every choice."
    return [*lines, "", note, ""]


STUDY = Study(
    name="semi_supervised",
    title=f"Self-training on real data: test macro-F1 of the tuned probe, with and without {POOL} unlabelled rows",
    description=__doc__,
    worker="semi_supervised:run",
    datasets=("rotten_tomatoes", "spam_assassin", "reuters_r8", "mnist", "tabler_icons"),
    settings=(Setting(LABELLED_ONLY, {"pool": False}), Setting(SELF_TRAINING, {"pool": True})),
    sizes=(8, 16),
    seeds=(0, 1, 2),
    reference=LABELLED_ONLY,
    sections=report,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
