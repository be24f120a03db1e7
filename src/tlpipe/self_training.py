"""Self-training on an unlabelled pool: the probe labels the pool rows it is confident about, and refits on them
with the labelled rows, until no row clears the threshold (scikit-learn's ``SelfTrainingClassifier``).

Pseudo-labels help where the probe is right when confident and hurt where it is confidently wrong, so the
threshold is chosen on the labelled rows' folds (each fold's probe pseudo-labels the same pool and is scored on
its held-out labelled rows), never on a test file; "off" (the labelled rows alone) is one of the candidates and
wins every tie. What it does on real data: ``benchmarks/semi_supervised.py`` (results/semi_supervised.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tlpipe.transferability import fit_probe, fold_count, normalised

THRESHOLDS = (0.7, 0.8, 0.9, 0.95)  # the probe's probability a pseudo-label needs
MAX_ROUNDS = 10  # scikit-learn's default: rounds of pseudo-labelling and refitting
OFF = "off"
UNLABELLED = -1  # scikit-learn's mark of a row without a label


@dataclass(frozen=True)
class SelfTraining:
    """A probe fitted on the labelled rows and, at ``threshold``, the pool rows it pseudo-labelled."""

    threshold: float | None  # None: the pool did not help on the folds, so the probe saw the labelled rows alone
    fold_scores: dict[str, float]  # mean macro-F1 over the folds: "off" and each threshold
    pseudo_labels: dict[int, int] = field(default_factory=dict)  # class -> pool rows it was given
    model: Any = None  # predict_proba and predict take normalised rows
    pool_labels: tuple[int, ...] = ()  # per pool row, the class it was given, or UNLABELLED; empty when off

    def pseudo_labelled(self) -> list[tuple[int, int]]:
        """(pool row, class) of every pool row given a pseudo-label, in pool order."""
        return [(row, label) for row, label in enumerate(self.pool_labels) if label != UNLABELLED]

    def describe(self, class_names: Sequence[str]) -> str:
        if self.threshold is None:
            return f"self-training off: no threshold beat the labelled rows alone on the folds ({self._scores()})"
        given = ", ".join(f"{class_names[label]} {count}" for label, count in sorted(self.pseudo_labels.items()))
        return (
            f"self-training at threshold {self.threshold}: {sum(self.pseudo_labels.values())} pseudo-labels "
            f"({given or 'none'}); folds' macro-F1 {self._scores()}"
        )

    def _scores(self) -> str:
        return ", ".join(f"{name} {score:.3f}" for name, score in self.fold_scores.items())


def self_train(
    features: np.ndarray,
    labels: Sequence[int],
    pool: np.ndarray,
    seed: int = 0,
    thresholds: Sequence[float] = THRESHOLDS,
) -> SelfTraining:
    """Choose the threshold on the folds of (``features``, ``labels``), then fit on every labelled row and ``pool``
    (unlabelled rows' features) at it; with "off" chosen, the probe of the labelled rows alone."""
    y = np.asarray(labels)
    base = _probe_of(features, labels, seed)
    scores = _fold_scores(normalised(features), y, normalised(pool), base, thresholds, seed)
    best = max(scores, key=lambda name: (scores[name], name == OFF))  # "off" wins a tie
    if best == OFF or not len(pool):
        return SelfTraining(None, scores, model=base().fit(normalised(features), y))
    return _fitted(base, features, y, pool, float(best), scores)


def self_train_at(
    features: np.ndarray, labels: Sequence[int], pool: np.ndarray, threshold: float, seed: int = 0
) -> SelfTraining:
    """The probe of (``features``, ``labels``) self-trained on ``pool`` at a ``threshold`` chosen elsewhere (no fold
    scores): how a cross-validation fold repeats, on its own rows, what ``self_train`` chose on all of them."""
    return _fitted(_probe_of(features, labels, seed), features, np.asarray(labels), pool, threshold, {})


def _probe_of(features: np.ndarray, labels: Sequence[int], seed: int) -> Callable[[], Any]:
    """A maker of unfitted probes with the C that ``fit_probe`` chooses on the labelled rows."""
    from sklearn.linear_model import LogisticRegression

    regularisation = float(fit_probe(features, labels, seed).C_)
    return lambda: LogisticRegression(C=regularisation, max_iter=5000)


def _fitted(
    base: Callable[[], Any], features: np.ndarray, y: np.ndarray, pool: np.ndarray, threshold: float,
    scores: dict[str, float],
) -> SelfTraining:  # fmt: skip
    model = _self_training(base(), threshold).fit(*_with_pool(normalised(features), y, normalised(pool)))
    given = model.transduction_[len(y) :]
    classes, counts = np.unique(given[given != UNLABELLED], return_counts=True)
    per_class = {int(label): int(count) for label, count in zip(classes, counts, strict=True)}
    return SelfTraining(threshold, scores, per_class, model, tuple(int(label) for label in given))


def _fold_scores(
    x: np.ndarray, y: np.ndarray, pool: np.ndarray, base: Any, thresholds: Sequence[float], seed: int
) -> dict[str, float]:
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(fold_count(y.tolist()), shuffle=True, random_state=seed)
    by_setting: dict[str, list[float]] = {OFF: [], **{str(t): [] for t in thresholds}}
    for fit_rows, held_out in folds.split(x, y):
        models = {OFF: base().fit(x[fit_rows], y[fit_rows])}
        for threshold in thresholds:
            models[str(threshold)] = _self_training(base(), threshold).fit(*_with_pool(x[fit_rows], y[fit_rows], pool))
        for name, model in models.items():
            predicted = model.predict(x[held_out])
            by_setting[name].append(float(f1_score(y[held_out], predicted, average="macro", zero_division=0)))
    return {name: float(np.mean(scores)) for name, scores in by_setting.items()}


def _self_training(base: Any, threshold: float) -> Any:
    from sklearn.semi_supervised import SelfTrainingClassifier

    return SelfTrainingClassifier(base, threshold=threshold, max_iter=MAX_ROUNDS)


def _with_pool(x: np.ndarray, y: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.vstack([x, pool]), np.concatenate([y, np.full(len(pool), UNLABELLED)])
