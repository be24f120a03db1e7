"""Would the head gain from reading the words? The check that led to ``lexical_probe``, outside the pipeline.

For each dataset of ``benchmarks/harness/text_datasets.py``, size (8, 16, 32, 64 labelled examples per class)
and seed (0, 1, 2), it draws the same seeded training sample the few-shot grid uses and fits
scikit-learn's logistic regression (C=10, balanced classes, run to convergence) on four inputs:

- ``word``: the TF-IDF baseline's features (word 1-2-grams, sublinear tf);
- ``embedding``: the frozen all-MiniLM-L6-v2 sentence embedding (unit length);
- ``wordpieces``: sublinear TF-IDF over the tokenizer's wordpieces;
- ``wordpieces+embedding``: both side by side, what ``lexical_probe`` gives its head.

Each is scored by 3-fold stratified cross-validation on the sample (the evidence), and, for the
record only, once on the test table. Nothing here sets a default: the pipeline's own figures
are ``few_shot.py``'s and ``recipes.py``'s.

    .venv/bin/python benchmarks/lexical_channel.py     # about 10 min on 2 CPU cores

Results: benchmarks/results/lexical_channel.json and .md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from harness.text_datasets import DATASETS
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from tlpipe.artifacts import write_json, write_text
from tlpipe.datasets import INPUT, LABEL, examples_per_class

RESULTS = Path(__file__).resolve().parent / "results" / "lexical_channel.json"
SIZES = [8, 16, 32, 64]
SEEDS = [0, 1, 2]
INPUTS = ["word", "embedding", "wordpieces", "wordpieces+embedding"]


Tokenize = Callable[[str], list[str]]


def features(
    kind: str, fit: list[str], score: list[str], fit_emb: np.ndarray, score_emb: np.ndarray, tokenize: Tokenize
) -> tuple[Any, Any]:
    """``kind``'s features of the ``fit`` and ``score`` texts, vectorisers fitted on ``fit`` only."""
    if kind == "embedding":
        return fit_emb, score_emb
    if kind == "word":
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=20000)
        return vectorizer.fit_transform(fit), vectorizer.transform(score)
    vectorizer = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True)
    fit_bag, score_bag = vectorizer.fit_transform(fit), vectorizer.transform(score)
    if kind == "wordpieces":
        return fit_bag, score_bag
    return (
        sparse.hstack([fit_bag, sparse.csr_matrix(fit_emb)]).tocsr(),
        sparse.hstack([score_bag, sparse.csr_matrix(score_emb)]).tocsr(),
    )


def macro_f1(
    kind: str,
    fit: list[str],
    score: list[str],
    fit_emb: np.ndarray,
    score_emb: np.ndarray,
    fit_labels: np.ndarray,
    score_labels: np.ndarray,
    tokenize: Tokenize,
) -> float:
    """Macro-F1 on ``score`` of logistic regression fitted on ``fit`` with ``kind``'s features."""
    fit_x, score_x = features(kind, fit, score, fit_emb, score_emb, tokenize)
    model = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced").fit(fit_x, fit_labels)
    return float(f1_score(score_labels, model.predict(score_x), average="macro"))


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Takes no options: the grid is fixed (see the module docstring)."
    ).parse_args()
    from harness.train_runs import SOURCE
    from sentence_transformers import SentenceTransformer

    from tlpipe.sources import fetch_snapshot

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        snapshot = Path(scratch) / "snapshot"
        fetch_snapshot(SOURCE, snapshot)
        encoder = SentenceTransformer(str(snapshot), device="cpu")

        def tokenize(text: str) -> list[str]:
            return encoder.tokenizer.tokenize(text)

        def embed(texts: list[str]) -> np.ndarray:
            return encoder.encode(texts, normalize_embeddings=True, batch_size=64)

        for dataset, load in DATASETS.items():
            train, test = load()
            test_texts, test_labels = test[INPUT].tolist(), test[LABEL].to_numpy()
            test_emb = embed(test_texts)
            for size in SIZES:
                for seed in SEEDS:
                    sample = examples_per_class(train, size, seed)
                    texts, labels = sample[INPUT].tolist(), sample[LABEL].to_numpy()
                    emb = embed(texts)
                    folds = list(StratifiedKFold(3, shuffle=True, random_state=seed).split(texts, labels))
                    for kind in INPUTS:
                        cv = [
                            macro_f1(kind, [texts[i] for i in a], [texts[i] for i in b], emb[a], emb[b],
                                     labels[a], labels[b], tokenize)
                            for a, b in folds
                        ]  # fmt: skip
                        on_test = macro_f1(kind, texts, test_texts, emb, test_emb, labels, test_labels, tokenize)
                        runs.append({"dataset": dataset, "size": size, "seed": seed, "input": kind,
                                     "cross_validated": statistics.fmean(cv), "test": on_test})  # fmt: skip
                    print(f"{dataset} {size}/class seed {seed} done", flush=True)
    report(runs)


def report(runs: list[dict[str, Any]]) -> None:
    """Write the runs and a Markdown table of the mean cross-validated and test macro-F1; print the table."""
    lines = [
        "# Logistic regression on four inputs (mean over 3 seeds): cross-validated on training / test",
        "",
        "| dataset | per class | " + " | ".join(INPUTS) + " |",
        "|---|---|" + "---|" * len(INPUTS),
    ]
    for dataset in DATASETS:
        for size in SIZES:
            cells = []
            for kind in INPUTS:
                members = [r for r in runs if (r["dataset"], r["size"], r["input"]) == (dataset, size, kind)]
                cv = statistics.fmean(r["cross_validated"] for r in members)
                on_test = statistics.fmean(r["test"] for r in members)
                cells.append(f"{cv:.3f} / {on_test:.3f}")
            lines.append(f"| {dataset} | {size} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    write_json(RESULTS, {"command": "benchmarks/lexical_channel.py", "runs": runs})
    write_text(RESULTS.with_suffix(".md"), table)
    print(table)


if __name__ == "__main__":
    main()
