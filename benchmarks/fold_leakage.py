"""Are the cross-validation folds easier than the test table? Nearest neighbours in the frozen embedding.

Where the labelled texts come in near-copies (one ticket pasted twice with a new order number),
k-fold cross-validation scores a model on texts whose twins it trained on, and rewards
memorising: a fine-tuned body would look better on the folds than on new data. This check asks
that without training anything and without choosing anything: for each dataset of
``benchmarks/harness/text_datasets.py``, it embeds every text with the frozen all-MiniLM-L6-v2 (unit length)
and compares, side by side,

- each training text's nearest other training text (leave-one-out), what a validation fold sees;
- each test text's nearest training text, what the test table sees;

by their cosine similarity (mean, 90th percentile, share above 0.9) and by how often that
neighbour has the same label (1-nearest-neighbour accuracy). Equal figures say the folds are no
easier than the test table, so a gap between a strategy's cross-validated and test scores is not
leakage between folds.

    .venv/bin/python benchmarks/fold_leakage.py     # about a minute on 2 CPU cores

Results: benchmarks/results/fold_leakage.json and .md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from harness.text_datasets import DATASETS
from harness.train_runs import SOURCE
from sentence_transformers import SentenceTransformer

from tlpipe.artifacts import write_json, write_text
from tlpipe.datasets import INPUT, LABEL
from tlpipe.sources import fetch_snapshot

RESULTS = Path(__file__).resolve().parent / "results" / "fold_leakage.json"
NEAR_COPY = 0.9


def neighbours(queries: np.ndarray, pool: np.ndarray, leave_one_out: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the cosine to its nearest ``pool`` row and that row's index (unit-length rows)."""
    similarity = queries @ pool.T
    if leave_one_out:
        np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    return similarity[np.arange(len(queries)), nearest], nearest


def describe(cosines: np.ndarray, same_label: np.ndarray) -> dict[str, float]:
    """Summary of nearest-neighbour cosines and how often the neighbour shares the label."""
    return {
        "cosine_mean": float(cosines.mean()),
        "cosine_p90": float(np.quantile(cosines, 0.9)),
        "near_copies": float((cosines > NEAR_COPY).mean()),
        "one_nn_accuracy": float(same_label.mean()),
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        snapshot = Path(scratch) / "snapshot"
        fetch_snapshot(SOURCE, snapshot)
        encoder = SentenceTransformer(str(snapshot), device="cpu")
        for dataset, load in DATASETS.items():
            train, test = load()
            train_emb, test_emb = (
                encoder.encode(table[INPUT].tolist(), normalize_embeddings=True, batch_size=64)
                for table in (train, test)
            )
            train_labels, test_labels = train[LABEL].to_numpy(), test[LABEL].to_numpy()
            fold_cos, fold_nearest = neighbours(train_emb, train_emb, leave_one_out=True)
            test_cos, test_nearest = neighbours(test_emb, train_emb, leave_one_out=False)
            results[dataset] = {
                "train_rows": len(train),
                "test_rows": len(test),
                "train_to_train": describe(fold_cos, train_labels[fold_nearest] == train_labels),
                "test_to_train": describe(test_cos, train_labels[test_nearest] == test_labels),
            }
    lines = [
        "# Nearest training text in the frozen embedding: what a fold sees against what the test table sees",
        "",
        "| dataset | rows (train, test) | from | cosine mean | cosine p90 | share above 0.9 | 1-NN accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, item in results.items():
        for side, label in (("train_to_train", "training text (leave one out)"), ("test_to_train", "test text")):
            figures = item[side]
            lines.append(
                f"| {dataset} | {item['train_rows']}, {item['test_rows']} | {label} | {figures['cosine_mean']:.3f} "
                f"| {figures['cosine_p90']:.3f} | {figures['near_copies']:.3f} | {figures['one_nn_accuracy']:.3f} |"
            )
    write_json(RESULTS, {"command": "benchmarks/fold_leakage.py", "near_copy_cosine": NEAR_COPY, "datasets": results})
    write_text(RESULTS.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
