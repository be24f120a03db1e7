"""Would the head gain from reading the words? The check that led to ``lexical_probe``, outside the pipeline.

For each dataset of ``benchmarks/harness/text_datasets.py``, size (8, 16, 32, 64 labelled examples per class)
and seed (0, 1, 2), it draws the same seeded training sample the few-shot grid uses and fits
scikit-learn's logistic regression (C=10, balanced classes, run to convergence) on four inputs, the settings:

- ``word``: the TF-IDF baseline's features (word 1-2-grams, sublinear tf);
- ``embedding``: the frozen all-MiniLM-L6-v2 sentence embedding (unit length);
- ``wordpieces``: sublinear TF-IDF over the tokenizer's wordpieces;
- ``wordpieces+embedding``: both side by side, what ``lexical_probe`` gives its head.

Each is scored by 3-fold stratified cross-validation on the sample (the evidence: ``macro_f1``, the mean of
the folds'), and, for the record only, once on the test table (``test_macro_f1``). Every input of a seed
shares the folds, so the report compares each with the embedding alone with a paired bootstrap interval over
the sample's out-of-fold predictions. Nothing here sets a default: the pipeline's own figures are
``few_shot.py``'s and ``recipes.py``'s.

    .venv/bin/python benchmarks/lexical_channel.py     # about 15 min on 2 CPU cores

Results go to benchmarks/results/lexical_channel_grid.json and .md (benchmarks/README.md's figures came from
this study before the harness: benchmarks/results/lexical_channel.json and .md).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from harness import Setting, Study, main
from harness.text_datasets import DATASETS, load
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from tlpipe.datasets import INPUT, LABEL, examples_per_class

INPUTS = ("word", "embedding", "wordpieces", "wordpieces+embedding")
FOLDS = 3

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


def predicted(
    kind: str, fit: list[str], score: list[str], fit_emb: np.ndarray, score_emb: np.ndarray, fit_labels: np.ndarray,
    tokenize: Tokenize,
) -> np.ndarray:  # fmt: skip
    """The ``score`` texts' labels from logistic regression fitted on ``fit`` with ``kind``'s features."""
    fit_x, score_x = features(kind, fit, score, fit_emb, score_emb, tokenize)
    return LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced").fit(fit_x, fit_labels).predict(score_x)


def fit_and_score(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: the cell's input cross-validated on its seeded sample (the mean fold macro-F1, the out-of-fold
    predictions) and, for the record, fitted on the whole sample and scored on the test table."""
    kind, seed = cell["params"]["input"], cell["seed"]
    train, test = load(cell["dataset"])
    sample = examples_per_class(train, cell["size"], seed)
    texts, labels = sample[INPUT].tolist(), sample[LABEL].to_numpy()
    test_texts, test_labels = test[INPUT].tolist(), test[LABEL].to_numpy()
    tokenize, embed = _encoder(Path(cell["scratch"])) if kind != "word" else (str.split, _no_embedding)
    emb, test_emb = embed(texts), embed(test_texts)
    out_of_fold = np.empty(len(labels), dtype=object)
    fold_scores = []
    for a, b in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(texts, labels):
        fold = predicted(kind, [texts[i] for i in a], [texts[i] for i in b], emb[a], emb[b], labels[a], tokenize)
        out_of_fold[b] = fold
        fold_scores.append(float(f1_score(labels[b], fold, average="macro")))
    on_test = predicted(kind, texts, test_texts, emb, test_emb, labels, tokenize)
    return {
        "score": {"macro_f1": statistics.fmean(fold_scores),
                  "test_macro_f1": float(f1_score(test_labels, on_test, average="macro"))},
        "predictions": out_of_fold.tolist(),
        "actual": labels.tolist(),
        "details": {"fold_macro_f1": fold_scores},
    }  # fmt: skip


def _encoder(scratch: Path) -> tuple[Tokenize, Callable[[list[str]], np.ndarray]]:
    """The frozen all-MiniLM-L6-v2 from the snapshot the grid's cells share: its tokenizer and unit embeddings."""
    from harness.train_runs import SOURCE
    from sentence_transformers import SentenceTransformer

    from tlpipe.sources import fetch_snapshot

    fetch_snapshot(SOURCE, scratch / "snapshot")
    encoder = SentenceTransformer(str(scratch / "snapshot"), device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        return encoder.encode(texts, normalize_embeddings=True, batch_size=64)

    return encoder.tokenizer.tokenize, embed


def _no_embedding(texts: list[str]) -> np.ndarray:
    return np.zeros((len(texts), 0))  # word TF-IDF reads no embedding: the encoder is not loaded


def on_test(records: list[dict[str, Any]]) -> list[str]:
    """The mean cross-validated and test macro-F1 of every input side by side, as the study reported them first."""
    scores: dict[tuple[str, int], dict[str, list[tuple[float, float]]]] = {}
    for r in records:
        pair = (r["score"]["macro_f1"], r["score"]["test_macro_f1"])
        scores.setdefault((r["dataset"], r["size"]), {}).setdefault(r["setting"], []).append(pair)
    lines = ["## Cross-validated on training / test (for the record), mean over the seeds", "",
             "| dataset | per class | " + " | ".join(INPUTS) + " |", "|---|---|" + "---|" * len(INPUTS)]  # fmt: skip
    for (dataset, size), by_input in scores.items():
        cells = [" / ".join(f"{statistics.fmean(p[i] for p in by_input[kind]):.3f}" for i in (0, 1))
                 if kind in by_input else "-" for kind in INPUTS]  # fmt: skip
        lines.append(f"| {dataset} | {size} | " + " | ".join(cells) + " |")
    return [*lines, ""]


STUDY = Study(
    name="lexical_channel",
    title="Logistic regression on four inputs: macro-F1 cross-validated on the training sample",
    description=__doc__,
    worker="lexical_channel:fit_and_score",
    datasets=tuple(DATASETS),
    settings=tuple(Setting(kind, {"input": kind}) for kind in INPUTS),
    sizes=(8, 16, 32, 64),
    seeds=(0, 1, 2),
    reference="embedding",
    sections=on_test,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
