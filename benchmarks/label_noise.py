"""Label review on real data: does ``tlpipe review-labels`` find injected label errors, and does removing what it
flags win back the test score they cost?

On each dataset of the real suite (``benchmarks/real_data``), sampled at 16 and 64 labelled examples per class
with three seeds, 10% of the sample's labels are flipped to another class at random (seeded). The review runs as
the product runs it (``tlpipe.label_review``: out-of-fold probabilities of the frozen-feature probe, then
cleanlab's ``find_label_issues``) on the default body's frozen features (the real suite's feature cache). Rows:

- ``clean``: the tuned probe (the real suite's, C chosen on the sample's folds) trained on the sample as built;
- ``noisy``: the same on the sample with the flipped labels;
- ``noisy, flagged removed``: the same on the noisy sample without the rows the review flagged; its details hold
  the review's precision and recall against the flipped rows.

Every row is scored on the dataset's test set, never used to choose anything.

    .venv/bin/python benchmarks/label_noise.py                  # every dataset; cached, resumable
    .venv/bin/python benchmarks/label_noise.py --datasets rotten_tomatoes mnist --seeds 0
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from harness import Setting, Study, by_dataset_and_size, main
from harness.pipeline_runs import SOURCES, _features, tuned_probe
from harness.real_datasets import real_dataset
from harness.train_runs import merged, scored_result

from tlpipe.datasets import INPUT, LABEL, examples_per_class
from tlpipe.label_review import out_of_fold_probabilities, review_labels
from tlpipe.transferability import fold_count

NOISE = 0.10
CLEAN, NOISY, CLEANED = "clean", "noisy", "noisy, flagged removed"
SETTINGS = (Setting(CLEAN, {"labels": "clean"}), Setting(NOISY, {"labels": "noisy"}),
            Setting(CLEANED, {"labels": "cleaned"}))  # fmt: skip


def run(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: the tuned probe on the cell's sample, with its labels clean, noisy, or noisy minus the flagged rows."""
    dataset = real_dataset(cell["dataset"])
    pool, test = dataset.tables()
    sample = examples_per_class(pool, cell["size"], cell["seed"]).reset_index(drop=True)
    features = _features(dataset, pool, test, Path(cell["scratch"]), SOURCES[dataset.modality])
    row_of = {item: index for index, item in enumerate(pool[INPUT])}
    x = features["pool"][[row_of[item] for item in sample[INPUT]]]
    names = sorted(set(pool[LABEL]))
    ids = {name: index for index, name in enumerate(names)}
    given, flipped = with_flipped_labels(sample[LABEL].tolist(), names, cell["seed"])
    keep = np.ones(len(sample), dtype=bool)
    details: dict[str, Any] = {"flipped": len(flipped)}
    if cell["params"]["labels"] == "cleaned":
        probabilities = out_of_fold_probabilities(x, [ids[label] for label in given], cell["seed"])
        rows = [str(row) for row in range(len(sample))]
        review = review_labels(rows, given, probabilities, names, "row", fold_count(given))
        flagged = {int(row) for row in review.table["row"]}
        keep[list(flagged)] = False
        hits = len(flagged & flipped)
        details |= {"flagged": len(flagged), "precision": hits / len(flagged) if flagged else None,
                    "recall": hits / len(flipped) if flipped else None}  # fmt: skip
    labels = sample[LABEL].tolist() if cell["params"]["labels"] == "clean" else given
    probe = tuned_probe(x[keep], [ids[label] for label, kept in zip(labels, keep, strict=True) if kept])
    predicted = [int(i) for i in probe.predict(features["test"])]
    return merged(scored_result(predicted, [ids[label] for label in test[LABEL]], names), {"details": details})


def with_flipped_labels(labels: list[str], names: list[str], seed: int) -> tuple[list[str], set[int]]:
    """``labels`` with ``NOISE`` of them (rounded, at least one) changed to another class drawn at random."""
    rng = np.random.default_rng(1000 + seed)
    chosen = rng.choice(len(labels), size=max(1, round(NOISE * len(labels))), replace=False)
    noisy = list(labels)
    for row in chosen:
        noisy[row] = str(rng.choice([name for name in names if name != labels[row]]))
    return noisy, {int(row) for row in chosen}


def report(records: list[dict[str, Any]]) -> list[str]:
    """Precision and recall of the flagged rows against the flipped ones, per dataset and size."""
    reviewed = [r for r in records if r["setting"] == CLEANED]
    if not reviewed:
        return []
    lines = ["## The review against the flipped labels", "",
             "| dataset | per class | flipped | flagged | precision | recall |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for (dataset, size), group in by_dataset_and_size((r["dataset"], r["size"], r["details"]) for r in reviewed):
        means = [_mean(group, key) for key in ("flipped", "flagged", "precision", "recall")]
        lines.append(f"| {dataset} | {size} | " + " | ".join(means) + " |")
    return [*lines, "", "Means over seeds.", ""]


def _mean(group: list[dict[str, Any]], key: str) -> str:
    values = [d[key] for d in group if d.get(key) is not None]
    return f"{statistics.fmean(values):.2f}" if values else "-"


STUDY = Study(
    name="label_noise",
    title="Label review on real data: 10% of the labels flipped (test macro-F1 of the tuned probe)",
    description=__doc__,
    worker="label_noise:run",
    datasets=("rotten_tomatoes", "spam_assassin", "reuters_r8", "mnist", "tabler_icons"),
    settings=SETTINGS,
    sizes=(16, 64),
    seeds=(0, 1, 2),
    reference=NOISY,
    sections=report,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
