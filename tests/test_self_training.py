"""Self-training: the threshold comes from the labelled rows' folds, "off" wins a tie, and pseudo-labels are counted."""

from __future__ import annotations

import numpy as np
import pytest

import tlpipe.self_training as self_training
from tlpipe.self_training import self_train, self_train_at


def blobs(per_class: int, seed: int, spread: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Three classes around three far-apart centres in 8 dimensions."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:3] * 4
    labels = np.repeat(np.arange(3), per_class)
    return centres[labels] + rng.normal(0, spread, (len(labels), 8)), labels


def scored(monkeypatch: pytest.MonkeyPatch, scores: dict[str, float]) -> None:
    """The folds score each setting so."""
    monkeypatch.setattr(self_training, "_fold_scores", lambda *args: scores)


def test_the_folds_score_off_and_every_threshold_with_held_out_labelled_rows() -> None:
    features, labels = blobs(4, seed=0, spread=2.0)
    pool, _ = blobs(50, seed=1, spread=2.0)

    trained = self_train(features, labels.tolist(), pool)

    assert set(trained.fold_scores) == {"off", "0.7", "0.8", "0.9", "0.95"}
    assert all(0.0 <= score <= 1.0 for score in trained.fold_scores.values())
    best = max(trained.fold_scores.values())
    assert trained.threshold is None or trained.fold_scores[str(trained.threshold)] == best > trained.fold_scores["off"]


def test_at_the_threshold_the_folds_chose_the_pool_is_pseudo_labelled_right_and_counted_per_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features, labels = blobs(4, seed=0)
    pool, truth = blobs(50, seed=1)
    scored(monkeypatch, {"off": 0.80, "0.8": 0.90, "0.9": 0.85})

    trained = self_train(features, labels.tolist(), pool)

    assert trained.threshold == 0.8
    given = trained.model.transduction_[len(labels) :]
    assert (given != -1).sum() > 0
    assert np.array_equal(given[given != -1], truth[given != -1])  # separable: every pseudo-label is right
    assert trained.pseudo_labels == {label: int((given == label).sum()) for label in range(3)}
    assert trained.pseudo_labelled() == [(row, int(label)) for row, label in enumerate(given) if label != -1]
    assert trained.describe(["a", "b", "c"]).startswith(f"self-training at threshold 0.8: {(given != -1).sum()} ")


def test_off_wins_a_tie_and_the_probe_then_sees_the_labelled_rows_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    features, labels = blobs(4, seed=0)
    pool, _ = blobs(50, seed=1)
    scored(monkeypatch, {"off": 0.90, "0.8": 0.90, "0.9": 0.70})

    trained = self_train(features, labels.tolist(), pool)

    assert trained.threshold is None and trained.pseudo_labels == {} and trained.pseudo_labelled() == []
    assert not hasattr(trained.model, "transduction_")
    assert trained.describe(["a", "b", "c"]).startswith("self-training off: no threshold beat")


def test_a_fold_repeating_the_chosen_threshold_labels_the_pool_as_the_choice_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features, labels = blobs(4, seed=0)
    pool, _ = blobs(50, seed=1)
    scored(monkeypatch, {"off": 0.80, "0.8": 0.90})

    chosen = self_train(features, labels.tolist(), pool)
    repeated = self_train_at(features, labels.tolist(), pool, 0.8)

    assert repeated.threshold == 0.8 and repeated.fold_scores == {}
    assert repeated.pool_labels == chosen.pool_labels and len(repeated.pseudo_labelled()) > 0
