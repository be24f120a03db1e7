"""How well a frozen body's features fit the labels: the score ``tlpipe rank-models`` ranks bodies by.

The score is the linear-probe protocol's: a converged, L2-regularised logistic regression on the L2-normalised
features, its inverse regularisation ``C`` chosen on stratified folds of the labelled rows, scored by the folds'
macro-F1 at that ``C``. Only the rows it is given are read (the training data, never a test split). Choosing ``C``
on the same folds that score it flatters every body alike, so the order stands.

Between bodies the folds cannot tell apart (a mean within one standard error of the best one's, as in Hastie,
Tibshirani and Friedman, *The Elements of Statistical Learning*, 7.10), the choice does not flip a coin: it keeps
the larger body. With 8 to 64 labels a class the folds are noisy, and on training rows that real datasets' samples
left out, the best fold mean scored higher than the cheaper tied body, and the larger tied body higher than the
best fold mean (the rules and their figures: benchmarks/body_rule.py, benchmarks/results/body_rule_*.md).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PROBE_CS = tuple(10.0**power for power in range(-2, 5))  # 0.01 to 10,000: normalised features want a large C
MAX_FOLDS = 5


@dataclass(frozen=True)
class ProbeScore:
    """A body's cross-validated probe: macro-F1 per fold at the chosen ``c``, their mean and standard error."""

    fold_scores: tuple[float, ...]
    c: float

    @property
    def mean(self) -> float:
        return statistics.fmean(self.fold_scores)

    @property
    def standard_error(self) -> float:
        if len(self.fold_scores) < 2:
            return 0.0
        return statistics.stdev(self.fold_scores) / math.sqrt(len(self.fold_scores))


def normalised(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def fold_count(labels: Sequence[object], most: int = MAX_FOLDS) -> int:
    """The folds the probe uses: at most ``most``, and no more than the smallest class has rows."""
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    return int(min(most, counts.min()))


def probe_score(features: np.ndarray, labels: Sequence[object], seed: int = 0) -> ProbeScore:
    """The cross-validated linear probe of ``features`` (one row per labelled example) on ``labels``.

    Raises ``ValueError`` when a class has fewer than 2 rows or there is only one class: nothing to cross-validate.
    """
    from sklearn.metrics import f1_score, make_scorer

    y = np.unique(np.asarray(labels), return_inverse=True)[1]
    if len(np.unique(y)) < 2:
        raise ValueError("ranking bodies needs at least two classes")
    folds = fold_count(y)
    if folds < 2:
        raise ValueError("ranking bodies needs at least 2 labelled examples in every class (one per fold)")
    # A class a fold never predicts scores 0 (zero_division); scikit-learn's "f1_macro" string fails on two classes
    # in LogisticRegressionCV (1.9: make_scorer gets pos_label twice), the explicit scorer does not.
    macro_f1 = make_scorer(f1_score, average="macro", zero_division=0)
    fitted = probe(folds, seed, macro_f1).fit(normalised(features), y)
    by_fold = np.asarray(fitted.scores_)[:, 0, :]  # (folds, Cs): one l1 ratio
    best = int(np.argmax(by_fold.mean(axis=0)))
    return ProbeScore(tuple(float(score) for score in by_fold[:, best]), PROBE_CS[best])


def fit_probe(features: np.ndarray, labels: Sequence[int], seed: int = 0) -> Any:
    """The probe fitted on every row: ``C`` chosen by stratified folds' log loss (at most ``MAX_FOLDS``), then
    refitted on all of them; a scikit-learn ``LogisticRegressionCV`` whose ``predict_proba`` takes normalised rows."""
    folds = fold_count(labels)
    if folds < 2:
        raise ValueError("fitting the probe needs at least 2 labelled examples in every class")
    return probe(folds, seed).fit(normalised(features), np.asarray(labels))


def probe(folds: int, seed: int = 0, scoring: Any = "neg_log_loss") -> Any:
    """The probe, unfitted: logistic regression, ``C`` from ``PROBE_CS`` chosen by ``scoring`` on ``folds``
    stratified, shuffled folds; a scikit-learn ``LogisticRegressionCV``."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    return LogisticRegressionCV(
        Cs=list(PROBE_CS),
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        scoring=scoring,
        l1_ratios=(0.0,),
        max_iter=5000,
        use_legacy_attributes=False,
    )


def within_noise_of_best(scores: dict[str, ProbeScore]) -> list[str]:
    """The names whose mean is at least the best mean minus the best's standard error, best first."""
    best = max(scores, key=lambda name: scores[name].mean)
    floor = scores[best].mean - scores[best].standard_error
    return sorted((name for name, score in scores.items() if score.mean >= floor), key=lambda n: -scores[n].mean)


def choose_body(scores: dict[str, ProbeScore], parameters: dict[str, float]) -> str:
    """The largest body (by ``parameters``, then by score) among those the folds cannot tell from the best."""
    tied = within_noise_of_best(scores)
    return max(tied, key=lambda name: (parameters[name], scores[name].mean))
