"""Where ``split.cross_validate_below`` should sit: held-out choice against k-fold choice, scored on training rows.

Above the threshold ``prepare`` holds 20% of the labels out to choose the strategy and epochs, and the final
model never sees them; below it, k-fold cross-validation chooses and the final model trains on every label,
for ``split.folds + 1`` runs of each candidate. This study measures both sides of that trade at the sizes
where the threshold could fall: the shipped params.yaml with ``auto``, once choosing on a held-out split
(``cross_validate_below: 0``) and once by cross-validation (a threshold above every size), on the same seeded
sample of a dataset's training table. Each is scored on the rows of the training table the sample did not
draw, never on the test table, so the threshold is chosen on training data. The report gives
cross-validation minus holdout with a paired bootstrap interval over the undrawn rows, and the seconds of each.

Sizes leave at least 12 undrawn training rows in every class to score on: the tickets' smallest class has 60
training rows, so they run at 32 and 48 per class, the work requests at 32 and 64.

    .venv/bin/python benchmarks/cross_validate_below.py                  # 3 seeds
    .venv/bin/python benchmarks/cross_validate_below.py --seeds 0 1 --datasets work_requests --sizes 64

Results go to benchmarks/results/cross_validate_below_grid.json and .md (benchmarks/README.md's table came
from this study before the harness: benchmarks/results/cross_validate_below.json and .md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness import Setting, Study, main
from harness.text_datasets import DATASETS
from harness.train_runs import on_undrawn

ABOVE_EVERY_SIZE = 1_000_000


def chosen_as_set(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: ``on_undrawn``, failing the cell if the stage chose by another method than the setting asked."""
    result = on_undrawn(cell)
    expected = cell["setting"]
    if result["details"]["model_selection"] != expected:
        raise RuntimeError(f"asked for {expected}, the train stage chose by {result['details']['model_selection']}")
    return result


STUDY = Study(
    name="cross_validate_below",
    title="Held-out choice against cross-validated choice: macro-F1 on the training rows the sample left out",
    description=__doc__,
    worker="cross_validate_below:chosen_as_set",
    datasets=tuple(DATASETS),
    settings=(
        Setting("holdout", {"split": {"cross_validate_below": 0}}),
        Setting("cross_validation", {"split": {"cross_validate_below": ABOVE_EVERY_SIZE}}),
    ),
    sizes=(32, 48, 64),
    seeds=(0, 1, 2),
    reference="holdout",
    dataset_sizes={"support_tickets": (32, 48), "work_requests": (32, 64)},
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
