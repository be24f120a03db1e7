"""Which unlabelled examples to label next: the query strategies of pool-based active learning.

Each strategy ranks the pool from the current model's class probabilities on it, the frozen body's features of
the pool and of the labelled examples, or both (Settles, "Active Learning Literature Survey", 2009; Sener and
Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach", ICLR 2018):

- ``margin``: smallest gap between the two most probable classes first (uncertainty);
- ``entropy``: highest entropy of the probabilities first (uncertainty);
- ``k_center``: greedy farthest-first on the L2-normalised features, each pick the pool example farthest from
  everything labelled or picked so far (diversity, the core-set method);
- ``margin_k_center``: the ``CANDIDATES_PER_PICK`` × budget most uncertain by margin, then farthest-first among
  them (both);
- ``random``: the baseline every strategy is measured against.

``benchmarks/active_learning.py`` measures them on the real suite; ``DEFAULT_STRATEGY`` is its choice.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tlpipe.transferability import normalised

CANDIDATES_PER_PICK = 5
# Uncertainty (margin, entropy: level with each other) beat random choice on the real text datasets and the
# diversity strategies fell below it (benchmarks/results/active_learning.md); images are not measured yet.
DEFAULT_STRATEGY = "margin"


def margin_order(probabilities: np.ndarray) -> np.ndarray:
    """Pool indices, smallest margin between the two most probable classes first."""
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    return np.argsort(top_two[:, 1] - top_two[:, 0], kind="stable")


def entropy_order(probabilities: np.ndarray) -> np.ndarray:
    """Pool indices, highest entropy first."""
    entropy = -(probabilities * np.log(np.clip(probabilities, 1e-12, 1.0))).sum(axis=1)
    return np.argsort(-entropy, kind="stable")


def farthest_first(pool: np.ndarray, labelled: np.ndarray, budget: int, among: np.ndarray | None = None) -> list[int]:
    """``budget`` pool indices (restricted to ``among`` if given), each the farthest from the labelled rows and the
    picks so far, by cosine distance of the normalised features."""
    pool = normalised(pool)
    candidates = np.arange(len(pool)) if among is None else np.asarray(among)
    if len(labelled):
        nearest = 1.0 - (pool[candidates] @ normalised(labelled).T).max(axis=1)
    else:
        nearest = np.full(len(candidates), np.inf)
    picks: list[int] = []
    for _ in range(min(budget, len(candidates))):
        best = int(np.argmax(nearest))
        picks.append(int(candidates[best]))
        nearest = np.minimum(nearest, 1.0 - pool[candidates] @ pool[candidates[best]])
        nearest[best] = -np.inf
    return picks


def select(
    strategy: str,
    budget: int,
    probabilities: np.ndarray,
    pool_features: np.ndarray,
    labelled_features: np.ndarray,
    seed: int = 0,
) -> list[int]:
    """The ``budget`` pool indices ``strategy`` would have labelled next, most useful first."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown query strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    budget = min(budget, len(pool_features))
    return STRATEGIES[strategy](budget, probabilities, pool_features, labelled_features, seed)


def _margin(budget: int, probabilities: np.ndarray, pool: np.ndarray, labelled: np.ndarray, seed: int) -> list[int]:
    return [int(i) for i in margin_order(probabilities)[:budget]]


def _entropy(budget: int, probabilities: np.ndarray, pool: np.ndarray, labelled: np.ndarray, seed: int) -> list[int]:
    return [int(i) for i in entropy_order(probabilities)[:budget]]


def _k_center(budget: int, probabilities: np.ndarray, pool: np.ndarray, labelled: np.ndarray, seed: int) -> list[int]:
    return farthest_first(pool, labelled, budget)


def _margin_k_center(
    budget: int, probabilities: np.ndarray, pool: np.ndarray, labelled: np.ndarray, seed: int
) -> list[int]:
    uncertain = margin_order(probabilities)[: CANDIDATES_PER_PICK * budget]
    return farthest_first(pool, labelled, budget, among=uncertain)


def _random(budget: int, probabilities: np.ndarray, pool: np.ndarray, labelled: np.ndarray, seed: int) -> list[int]:
    return [int(i) for i in np.random.default_rng(seed).permutation(len(pool))[:budget]]


STRATEGIES: dict[str, Callable[[int, np.ndarray, np.ndarray, np.ndarray, int], list[int]]] = {
    "margin": _margin,
    "entropy": _entropy,
    "k_center": _k_center,
    "margin_k_center": _margin_k_center,
    "random": _random,
}
