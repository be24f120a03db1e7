"""Each strategy's learning rate (or another recipe key), cross-validated on the training labels of two datasets.

The first recipes (the strategies' text recipes, ``tlpipe.strategies``) were picked from test scores on the demo data
(``benchmarks/strategies.py``). This script measures the key each recipe is most sensitive to,
its learning rate, the way the train stage chooses epochs, and never reads a test table. For
each dataset of ``benchmarks/few_shot.py`` (the demo's support tickets, the transfer demo's work
requests), each strategy at the sizes where ``auto`` or a user would run it, and each seed, it
draws a seeded sample of the training table (``split.examples_per_class``), assigns
``split.folds`` stratified folds (``tlpipe.model_selection.assign_folds``), and trains every
candidate value on every fold from the pip-packaged all-MiniLM-L6-v2 with ``fine_tune`` and the
strategy's recipe otherwise. A value scores its mean fold macro-F1 at the epoch count
``choose_epochs`` picks, as in the train stage. The recipe's own value is marked; a value that
beats it by more than the folds' spread on both datasets is the evidence to change it.
The values are half, the recipe's and double of the recipe as it stands, so a run after a change
tries around the new value; the report keeps every value run, with the seeds behind each.

    .venv/bin/python benchmarks/recipes.py                                  # the default plan (about 30 min)
    .venv/bin/python benchmarks/recipes.py --plan contrastive:8 --seeds 0 1
    .venv/bin/python benchmarks/recipes.py --plan lexical_probe:64 --key epochs   # another recipe key
    .venv/bin/python benchmarks/recipes.py --report-only

Results go to benchmarks/results/recipes.json and recipes.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from tlpipe.artifacts import write_json, write_text
from tlpipe.config import SplitConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, examples_per_class, label_names
from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.model_selection import assign_folds, choose_epochs
from tlpipe.sources import fetch_snapshot
from tlpipe.strategies import get_strategy, strategies_for
from tlpipe.strategies.recipes import settings_for
from tlpipe.training import fine_tune, seed_everything

REPO = Path(__file__).resolve().parents[1]
RECIPES = {name: dict(get_strategy(name).recipe("text")) for name in strategies_for("text")}
sys.path.insert(0, str(REPO / "benchmarks"))
from few_shot import DATASETS, SOURCE, shipped_params  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "recipes.json"
# The key each strategy's recipe is most sensitive to, and the values tried: the recipe's, half and double.
VARIED = {
    strategy: ("head_learning_rate" if strategy in ("linear_probe", "lexical_probe") else "learning_rate")
    for strategy in RECIPES
}
# Where each strategy runs: auto's few-label pick and the probes it is compared with at 8 per class; the
# many-label pick, the probes and a plain fine-tune at 64.
PLAN = [
    "contrastive:8", "linear_probe:8", "lexical_probe:8",
    "freeze_unfreeze:64", "full:64", "linear_probe:64", "lexical_probe:64",
]  # fmt: skip


def candidates(strategy: str, key: str) -> list[float]:
    """Half, the recipe's and double of the recipe's ``key`` (whole numbers for epochs)."""
    recipe = RECIPES[strategy][key]
    if key == "epochs":
        return [max(1, recipe // 2), recipe, recipe * 2]
    return [recipe / 2, recipe, recipe * 2]


def cross_validate(
    strategy: str, key: str, value: float, labelled: pd.DataFrame, split: SplitConfig, snapshot: Path, seed: int
) -> dict[str, Any]:
    """``strategy`` with ``key = value`` trained on every fold of ``labelled``: its choose_epochs score."""
    params = shipped_params()
    train = settings_for(TrainConfig.model_validate(params["train"] | {"seed": seed}), strategy, "text")
    train = train.model_copy(update={key: value})
    labels = label_names(labelled)
    ids = {label: index for index, label in enumerate(labels)}
    preprocess = TextPreprocessor(load_tokenizer(snapshot), params["preprocess"]["max_length"])
    folds = assign_folds(labelled, split)
    histories = []
    started = time.perf_counter()
    for fold in range(folds.folds):
        fit, valid = folds.split(labelled, fold)
        seed_everything(train.seed)
        model = load_pretrained(snapshot, len(labels), train.dropout)
        result = fine_tune(
            model, preprocess,
            fit[INPUT].tolist(), [ids[label] for label in fit[LABEL]],
            valid[INPUT].tolist(), [ids[label] for label in valid[LABEL]],
            train,
        )  # fmt: skip
        histories.append(result.history)
    scored = choose_epochs(strategy, histories)
    return {"mean": scored.mean, "std": scored.std, "epochs": scored.epochs, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--plan", nargs="+", default=PLAN, help="strategy:examples_per_class pairs (default: %(default)s)"
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--key", choices=["epochs", "learning_rate", "head_learning_rate"],
        help="the recipe key to vary for every planned strategy (default: each one's learning rate)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="summarise --output again; train nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    runs: list[dict[str, Any]] = json.loads(args.output.read_text())["runs"] if args.output.is_file() else []
    if not args.report_only:
        planned = [(entry.split(":")[0], int(entry.split(":")[1])) for entry in args.plan]
        varied = {strategy: args.key or VARIED[strategy] for strategy, _ in planned}
        for strategy, key in varied.items():
            if key not in RECIPES[strategy]:
                parser.error(f"{strategy}'s recipe has no {key} (it has {', '.join(RECIPES[strategy])})")
        keys = {(d, s, n, seed, varied[s]) for d in args.datasets for s, n in planned for seed in args.seeds}
        runs = [
            run for run in runs
            if (run["dataset"], run["strategy"], run["size"], run["seed"], run["key"]) not in keys
        ]  # fmt: skip
        split = SplitConfig.model_validate(shipped_params()["split"]).model_copy(
            update={"cross_validate_below": sys.maxsize}  # cross-validate at every size: the recipes' evidence
        )
        with tempfile.TemporaryDirectory() as scratch:
            snapshot = Path(scratch) / "snapshot"
            fetch_snapshot(SOURCE, snapshot)
            for strategy, size in planned:
                for dataset in args.datasets:
                    train_table, _ = DATASETS[dataset]()  # the test table is never read
                    for seed in args.seeds:
                        labelled = examples_per_class(train_table, size, seed)
                        key = varied[strategy]
                        for value in candidates(strategy, key):
                            fold_split = split.model_copy(update={"seed": seed})
                            scored = cross_validate(strategy, key, value, labelled, fold_split, snapshot, seed)
                            run = {"dataset": dataset, "strategy": strategy, "size": size, "seed": seed,
                                   "key": key, "value": value, **scored}  # fmt: skip
                            runs.append(run)
                            print(
                                f"{dataset:<16} {strategy:<16} {size:>3}/class seed {seed} {key} "
                                f"{value:g}: cross-validated macro-F1 {scored['mean']:.3f} ± {scored['std']:.3f} "
                                f"at {scored['epochs']} epochs ({scored['seconds']:.0f}s)",
                                flush=True,
                            )
                            report(args.output, runs, quiet=True)
    report(args.output, runs)


def report(path: Path, runs: list[dict[str, Any]], quiet: bool = False) -> None:
    """Write the runs and a Markdown table of mean cross-validated macro-F1 per value; print it unless ``quiet``."""
    groups: dict[tuple[str, int, str, str], dict[float, list[dict[str, Any]]]] = {}
    for run in runs:
        group = (run["strategy"], run["size"], run["dataset"], run["key"])
        groups.setdefault(group, {}).setdefault(run["value"], []).append(run)
    lines = [
        "# Recipe settings, cross-validated on training labels only",
        "",
        "Each value: mean fold macro-F1 over its seeds ± the folds' spread (mean over seeds), seeds run.",
        "",
        "| strategy | per class | dataset | key | values tried (recipe in bold) | favoured, per seed |",
        "|---|---|---|---|---|---|",
    ]
    for (strategy, size, dataset, key), by_value in sorted(groups.items()):
        recipe = RECIPES[strategy][key]
        means = {value: statistics.fmean(member["mean"] for member in members) for value, members in by_value.items()}
        cells = []
        for value in sorted(by_value):
            members = by_value[value]
            spread = statistics.fmean(member["std"] for member in members)
            seeds = ",".join(str(member["seed"]) for member in members)
            name = f"**{value:g}**" if value == recipe else f"{value:g}"
            cells.append(f"{name}: {means[value]:.3f} ± {spread:.3f} (seeds {seeds})")
        # Each seed's best value: a mean over other samples is not comparable.
        per_seed: dict[int, dict[float, float]] = {}
        for value, members in by_value.items():
            for member in members:
                per_seed.setdefault(member["seed"], {})[value] = member["mean"]
        favoured = "; ".join(
            f"seed {seed}: {max(scores, key=scores.get):g}" for seed, scores in sorted(per_seed.items())
        )
        lines.append(f"| {strategy} | {size} | {dataset} | {key} | {'; '.join(cells)} | {favoured} |")
    table = "\n".join(lines) + "\n"
    write_json(
        path,
        {
            "command": "benchmarks/recipes.py " + " ".join(sys.argv[1:]),
            "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version()},
            "runs": runs,
        },
    )
    write_text(path.with_suffix(".md"), table)
    if not quiet:
        print(table)


if __name__ == "__main__":
    main()
