"""The default against the previous default, the probes, a full fine-tune and TF-IDF on two datasets.

Neither dataset tuned anything here (``harness/text_datasets.py``: the demo's support tickets and the
transfer demo's work requests). For each dataset, number of labelled examples per class (a seeded sample of
its training table, as ``split.examples_per_class`` draws it) and seed, every setting runs the real ``train``
stage from the pip-packaged all-MiniLM-L6-v2 in a temporary project and is scored once, on the dataset's
test table (``harness/train_runs.py``):

- ``default``: params.yaml as shipped (``train.strategy: auto``; below 100 labelled texts per class, every
  size here, k-fold cross-validation chooses the strategy and epochs and the final model trains on every label);
- ``previous``: the previous default, ``auto`` choosing on a held-out 20% (``split.cross_validate_below: 0``)
  and comparing its pick with the linear probe only, tuning in fp32 (``train.mixed_precision: off``);
- ``linear_probe``, ``lexical_probe`` and ``full``: the strategy named in params.yaml, with its recipe;
- ``tfidf``: the TF-IDF + logistic regression baseline on the same labels;
- only with ``--settings``: ``lexical_contrastive`` and ``bitfit`` named alone, and ``half_pairs``, a variant
  tried: ``default`` with half the contrastive pairs per example, for half the tuning cost.

Nothing is chosen on the test tables: every choice a setting makes (strategy, epochs) is the stage's own, from
cross-validation or validation on the sampled training labels, and the report also gives those
training-data scores, the evidence for ``auto``'s rule. Every cell keeps its test predictions, so the report
gives each setting minus the default with a paired bootstrap interval over the test rows (the tickets' test
table has 20 texts per class, so one text moves macro-F1 by about a point).

    .venv/bin/python benchmarks/few_shot.py                                  # everything (hours on 2 CPU cores)
    .venv/bin/python benchmarks/few_shot.py --sizes 8 16                     # cells already run come from the cache
    .venv/bin/python benchmarks/few_shot.py --settings default 'lexical_*' --seeds 3 4
    .venv/bin/python benchmarks/few_shot.py --report-only                    # rebuild the report

Results go to benchmarks/results/few_shot_grid.json and .md (the tables in benchmarks/README.md came from
this study before the harness: benchmarks/results/few_shot.json and .md).
"""

from __future__ import annotations

import statistics
from typing import Any

from harness import Setting, Study, main
from harness.text_datasets import DATASETS

STRATEGIES = ("contrastive", "lexical_contrastive", "linear_probe", "lexical_probe", "full", "freeze_unfreeze")

SETTINGS = (
    Setting("default", {}),
    Setting("previous", {"split": {"cross_validate_below": 0},
                         "train": {"auto": {"compare": ["linear_probe"]}, "mixed_precision": "off"}}),
    *(Setting(name, {"train": {"strategy": name}}) for name in ("linear_probe", "lexical_probe", "full")),
    Setting("tfidf", {"baseline": "tfidf"}),
    *(Setting(name, {"train": {"strategy": name}}) for name in ("lexical_contrastive", "bitfit")),
    Setting("half_pairs", {"train": {"contrastive": {"pairs_per_example": 10}}}),
)  # fmt: skip


def evidence(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset and size, each strategy's mean score on the training labels (never the test): auto's evidence;
    then every run's choice."""
    scores: dict[tuple[str, int, str], list[float]] = {}
    methods: dict[tuple[str, int], set[str]] = {}
    chosen = [r for r in records if "chose" in r.get("details", {})]
    if not chosen:
        return []
    for record in chosen:
        if record["setting"] == "previous":
            continue
        details = record["details"]
        methods.setdefault((record["dataset"], record["size"]), set()).add(details["model_selection"])
        for strategy, value in details["training_data_macro_f1"].items():
            scores.setdefault((record["dataset"], record["size"], strategy), []).append(value)
    lines = [
        "## Which strategy the training labels favour (mean of the scores the stage chose with)", "",
        "| dataset | per class | chosen by | " + " | ".join(STRATEGIES) + " | favoured |",
        "|---|---|---|" + "---|" * (len(STRATEGIES) + 1),
    ]  # fmt: skip
    for (dataset, size), how in sorted(methods.items()):
        means = {name: statistics.fmean(scores[(dataset, size, name)])
                 for name in STRATEGIES if (dataset, size, name) in scores}  # fmt: skip
        cells = " | ".join(f"{means[name]:.3f}" if name in means else "-" for name in STRATEGIES)
        lines.append(f"| {dataset} | {size} | {', '.join(sorted(how))} | {cells} | {max(means, key=means.get)} |")
    lines += [
        "",
        "## What each run chose (cross-validated, or held out for `previous`)",
        "",
        "| dataset | per class | seed | setting | chose | scores on training data |",
        "|---|---|---|---|---|---|",
    ]
    for record in chosen:
        details = record["details"]
        training = ", ".join(f"{name} {value:.3f}" for name, value in details["training_data_macro_f1"].items())
        lines.append(
            f"| {record['dataset']} | {record['size']} | {record['seed']} | {record['setting']} | "
            f"{details['chose']} ({details['model_selection']}, {details['epochs']} epochs) | {training} |"
        )
    return [*lines, ""]  # fmt: skip


STUDY = Study(
    name="few_shot",
    title="Few-shot settings on two datasets: test macro-F1",
    description=__doc__,
    worker="harness.train_runs:on_test",
    datasets=tuple(DATASETS),
    settings=SETTINGS,
    sizes=(8, 16, 32, 64),
    seeds=(0, 1, 2),
    reference="default",
    default_settings=("default", "previous", "linear_probe", "lexical_probe", "full", "tfidf"),
    sections=evidence,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
