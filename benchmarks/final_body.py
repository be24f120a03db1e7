"""The final body of a cross-validated contrastive run: tuned again on every example, or the mean of the folds'.

With few labels the train stage tunes a body per fold to choose the strategy and the epochs, then
(``train.contrastive.final_body: tune``) tunes a fourth on every example for the final model: at 8 examples
per class, a third of the stage's time. ``fold_average`` instead averages the folds' bodies, each tuned on two
thirds of the examples from the same pretrained weights, and trains the final head on every example over that
body. This study runs the default pipeline both ways on the same labelled sample and scores each on the
training rows the sample left out, never the test table, as ``cross_validate_below.py`` does.

The rule, fixed before the first run: ``fold_average`` becomes the default if its mean macro-F1 over the seeds
is at most 1 point below tuning again, or above it, on both datasets at every size run.

    .venv/bin/python benchmarks/final_body.py                          # 8 and 16 per class, 3 seeds
    .venv/bin/python benchmarks/final_body.py --sizes 8 --seeds 0      # one quick pair

Results go to benchmarks/results/final_body_grid.json and .md (benchmarks/README.md's figures came from this
study before the harness: benchmarks/results/final_body.json and .md).
"""

from __future__ import annotations

import statistics
from typing import Any

from harness import Setting, Study, main
from harness.text_datasets import DATASETS

RULE = -0.01  # fold_average minus tune, mean over seeds, at every dataset and size


def rule(records: list[dict[str, Any]]) -> list[str]:
    """Whether fold_average is at most 1 point below tune everywhere both ran (mean over the seeds both ran)."""
    scores: dict[tuple[str, int], dict[str, dict[int, float]]] = {}
    for record in records:
        where = scores.setdefault((record["dataset"], record["size"]), {})
        where.setdefault(record["setting"], {})[record["seed"]] = record["score"]["macro_f1"]
    gaps = {}
    for where, by_setting in scores.items():
        seeds = set(by_setting.get("fold_average", {})) & set(by_setting.get("tune", {}))
        if seeds:
            gaps[where] = statistics.fmean(by_setting["fold_average"][s] - by_setting["tune"][s] for s in seeds)
    met = bool(gaps) and all(gap >= RULE for gap in gaps.values())
    listed = ", ".join(f"{dataset} {size}: {100 * gap:+.1f}" for (dataset, size), gap in sorted(gaps.items()))
    return [f"Rule (fold_average at most 1 point below tune everywhere): {'met' if met else 'not met'} ({listed}).", ""]


STUDY = Study(
    name="final_body",
    title="The final body: mean of the folds' bodies against tuning again (macro-F1 on the undrawn training rows)",
    description=__doc__,
    worker="harness.train_runs:on_undrawn",
    datasets=tuple(DATASETS),
    settings=tuple(
        Setting(name, {"train": {"contrastive": {"final_body": name}}}) for name in ("fold_average", "tune")
    ),
    sizes=(8, 16),
    seeds=(0, 1, 2),
    reference="tune",
    sections=rule,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
