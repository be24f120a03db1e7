"""Each strategy's learning rate (or another recipe key), cross-validated on the training labels of two datasets.

The first recipes (the strategies' text recipes, ``tlpipe.strategies``) were picked from test scores on the
demo data (``strategies.py``, since deleted). This study measures the key each recipe is most sensitive to,
its learning rate, the way the train stage chooses epochs, and never reads a test table. For each dataset
(``harness/text_datasets.py``), each strategy at the sizes where ``auto`` or a user would run it, and each
seed, it draws a seeded sample of the training table (``split.examples_per_class``), assigns ``split.folds``
stratified folds (``tlpipe.model_selection.assign_folds``), and trains every candidate value on every fold
from the pip-packaged all-MiniLM-L6-v2 with ``fine_tune`` and the strategy's recipe otherwise. A value scores
its mean fold macro-F1 at the epoch count ``choose_epochs`` picks, as in the train stage.

A setting is ``STRATEGY KEY VALUE``: half, the recipe's and double of each key the recipe has (learning_rate,
head_learning_rate, epochs), so a run after a change tries around the new value. The default settings vary
each planned strategy's learning rate (the head's for the probes); ``--settings`` picks others by pattern.
Each value is compared with the recipe's own; a value that beats it by more than the folds' spread on both
datasets is the evidence to change it.

    .venv/bin/python benchmarks/recipes.py                                        # the default plan (about 30 min)
    .venv/bin/python benchmarks/recipes.py --settings 'contrastive learning_rate *' --seeds 0 1
    .venv/bin/python benchmarks/recipes.py --settings 'lexical_probe epochs *' --sizes 64
    .venv/bin/python benchmarks/recipes.py --settings 'bitfit epochs *' --sizes 16 --seeds 0 1
    .venv/bin/python benchmarks/recipes.py --report-only

Results go to benchmarks/results/recipes_grid.json and .md (benchmarks/README.md's table came from this study
before the harness: benchmarks/results/recipes.json and .md).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import Setting, Study, main
from harness.text_datasets import DATASETS, load
from harness.train_runs import SOURCE, shipped_params

from tlpipe.config import SplitConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, examples_per_class, label_names
from tlpipe.strategies import get_strategy, strategies_for

RECIPES = {name: dict(get_strategy(name).recipe("text")) for name in strategies_for("text")}
KEYS = ("learning_rate", "head_learning_rate", "epochs")
# Where each strategy runs: auto's few-label pick and the probes it is compared with at 8 per class; the
# many-label pick, the probes and a plain fine-tune at 64; bitfit, the strategy package's acceptance test, at 16.
SIZES = {"contrastive": (8,), "linear_probe": (8, 64), "lexical_probe": (8, 64), "freeze_unfreeze": (64,),
         "full": (64,), "bitfit": (16,)}  # fmt: skip
# The key each planned recipe is most sensitive to.
VARIED = {s: "head_learning_rate" if s in ("linear_probe", "lexical_probe") else "learning_rate" for s in SIZES}


def candidates(strategy: str, key: str) -> list[float]:
    """Half, the recipe's and double of the recipe's ``key`` (whole numbers for epochs)."""
    recipe = RECIPES[strategy][key]
    if key == "epochs":
        return list(dict.fromkeys([max(1, recipe // 2), recipe, recipe * 2]))
    return [recipe / 2, recipe, recipe * 2]


def name(strategy: str, key: str, value: float) -> str:
    return f"{strategy} {key} {value:g}"


SETTINGS = tuple(
    Setting(name(strategy, key, value), {"strategy": strategy, "key": key, "value": value}, SIZES.get(strategy))
    for strategy, recipe in RECIPES.items()
    for key in KEYS
    if key in recipe
    for value in candidates(strategy, key)
)
REFERENCE = {s.name: name(s.params["strategy"], s.params["key"], RECIPES[s.params["strategy"]][s.params["key"]])
             for s in SETTINGS}  # fmt: skip


def cross_validate(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: the cell's strategy with ``key = value`` trained on every fold of its labelled sample; its
    ``choose_epochs`` score (the mean fold macro-F1) and the folds' spread."""
    from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
    from tlpipe.model_selection import assign_folds, choose_epochs
    from tlpipe.sources import fetch_snapshot
    from tlpipe.strategies.recipes import settings_for
    from tlpipe.training import fine_tune, seed_everything

    strategy, key, value, seed = (
        cell["params"]["strategy"],
        cell["params"]["key"],
        cell["params"]["value"],
        cell["seed"],
    )
    snapshot = Path(cell["scratch"]) / "snapshot"
    fetch_snapshot(SOURCE, snapshot)
    params = shipped_params()
    train = settings_for(TrainConfig.model_validate(params["train"] | {"seed": seed}), strategy, "text")
    train = train.model_copy(update={key: value})
    # Cross-validate at every size: the recipes' evidence.
    split = SplitConfig.model_validate(params["split"] | {"seed": seed, "cross_validate_below": sys.maxsize})
    labelled = examples_per_class(load(cell["dataset"])[0], cell["size"], seed)  # the test table is never read
    ids = {label: index for index, label in enumerate(label_names(labelled))}
    preprocess = TextPreprocessor(load_tokenizer(snapshot), params["preprocess"]["max_length"])
    folds = assign_folds(labelled, split)
    histories = []
    for fold in range(folds.folds):
        fit, valid = folds.split(labelled, fold)
        seed_everything(train.seed)
        model = load_pretrained(snapshot, len(ids), train.dropout)
        result = fine_tune(
            model, preprocess,
            fit[INPUT].tolist(), [ids[label] for label in fit[LABEL]],
            valid[INPUT].tolist(), [ids[label] for label in valid[LABEL]],
            train,
        )  # fmt: skip
        histories.append(result.history)
    scored = choose_epochs(strategy, histories)
    return {"score": {"macro_f1": scored.mean, "folds_std": scored.std}, "details": {"epochs": scored.epochs}}


def favoured(records: list[dict[str, Any]]) -> list[str]:
    """Per strategy, size, dataset and key: each value's mean and the folds' spread, and each seed's best value
    (a mean over other samples is not comparable)."""
    groups: dict[tuple[str, int, str, str], dict[float, list[dict[str, Any]]]] = {}
    for record in records:
        params = record["params"]
        group = (params["strategy"], record["size"], record["dataset"], params["key"])
        groups.setdefault(group, {}).setdefault(params["value"], []).append(record)
    lines = ["## Each value against the folds' spread, and the value each seed favoured", "",
             "| strategy | per class | dataset | key | values (recipe in bold): mean ± folds' spread | favoured |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for (strategy, size, dataset, key), by_value in sorted(groups.items()):
        cells = []
        for value, members in sorted(by_value.items()):
            shown = f"**{value:g}**" if value == RECIPES[strategy][key] else f"{value:g}"
            mean = statistics.fmean(m["score"]["macro_f1"] for m in members)
            cells.append(f"{shown}: {mean:.3f} ± {statistics.fmean(m['score']['folds_std'] for m in members):.3f}")
        per_seed: dict[int, dict[float, float]] = {}
        for value, members in by_value.items():
            for member in members:
                per_seed.setdefault(member["seed"], {})[value] = member["score"]["macro_f1"]
        best = "; ".join(f"seed {seed}: {max(scores, key=scores.get):g}" for seed, scores in sorted(per_seed.items()))
        lines.append(f"| {strategy} | {size} | {dataset} | {key} | {'; '.join(cells)} | {best} |")
    return [*lines, ""]


STUDY = Study(
    name="recipes",
    title="Recipe settings, cross-validated on training labels only (mean fold macro-F1)",
    description=__doc__,
    worker="recipes:cross_validate",
    datasets=tuple(DATASETS),
    settings=SETTINGS,
    sizes=(8, 64),
    seeds=(0,),
    reference=REFERENCE,
    default_settings=tuple(
        s.name
        for s in SETTINGS
        if VARIED.get(s.params["strategy"]) == s.params["key"] and s.params["strategy"] != "bitfit"
    ),  # fmt: skip
    sections=favoured,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
