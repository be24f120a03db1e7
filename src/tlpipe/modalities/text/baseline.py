"""The classic baseline a fine-tuned model has to beat: TF-IDF features and logistic regression."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from tlpipe.config import EvaluateConfig
from tlpipe.modalities.text.settings import evaluate_of


def fit_tfidf_logreg(texts: Sequence[str], labels: Sequence[int], evaluate: EvaluateConfig, seed: int) -> Pipeline:
    """Word 1-2 gram TF-IDF (sublinear tf) into a class-balanced logistic regression, fitted."""
    pipeline = make_pipeline(
        TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, max_features=evaluate_of(evaluate).baseline_max_features
        ),
        LogisticRegression(C=evaluate.baseline_c, max_iter=2000, class_weight="balanced", random_state=seed),
    )
    return pipeline.fit(list(texts), list(labels))
