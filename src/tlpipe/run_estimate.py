"""How long the train stage will take on this machine, said before it starts.

The estimate counts the passes of examples through the body that the plan makes, each strategy counting its own
(``Strategy.work``), and prices them at what one pass costs here, measured just before on a batch of the training
inputs: a frozen forward pass (preprocessing included), and a training step at ``TRAINING_STEP_COST`` times that
(forward, backward and the optimizer step); and each run's loading of the body, at what one load took just before.
What a run adds besides (the head's epochs on cached features, checkpoint writes, early stopping cutting epochs
short) is left out. How far the estimate fell from the train stage's own time on real data: benchmarks/README.md.

Under cross-validation every candidate trains once per fold, and then the chosen one once on every example; which
one is chosen is not known before, so the estimate is a range over the candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tlpipe.wording import counted

# A training step's cost per example over a frozen forward pass's, on CPU (backward is about twice the forward,
# plus the optimizer step): 4.24 for all-MiniLM-L6-v2 and 4.21 for all-mpnet-base-v2 on 16 texts of 128 tokens on
# 2 cores (benchmarks/step_cost.py, results/step_cost.json).
TRAINING_STEP_COST = 4.2


@dataclass(frozen=True)
class Work:
    """The passes of examples through the body one training run makes.

    ``encoded``: rows the frozen body encodes into the feature cache (a row costs once, whatever reads it);
    ``forward``: other frozen forward passes (validation each epoch, a frozen body's epochs on raw inputs);
    ``trained``: passes with the body training; ``pairs``: pairs of inputs a body is tuned on (both sides train),
    once per run whichever strategies share the tuned body.
    """

    encoded: int = 0
    forward: int = 0
    trained: int = 0
    pairs: int = 0


@dataclass(frozen=True)
class Estimate:
    """The train stage's expected seconds: ``low`` to ``high`` over the candidates the final model may be."""

    low: float
    high: float
    forward_seconds: float  # per example, measured here
    runs: int
    setup_seconds: float = 0.0  # loading the body, once per run, measured here

    def describe(self) -> str:
        low, high = _duration(self.low), _duration(self.high)
        span = low if low == high else f"{low} to {high}"
        return (
            f"Estimated training time on this machine: {span} ({counted(self.runs, 'training run')}; a frozen "
            f"forward pass measured here at {self.forward_seconds * 1000:.0f} ms an example, a training step at "
            f"{TRAINING_STEP_COST:g} times that, loading the body at {self.setup_seconds:.1f} s a run)"
        )

    def to_dict(self) -> dict[str, float]:
        return {"low": self.low, "high": self.high, "forward_per_example": self.forward_seconds, "runs": self.runs,
                "setup_per_run": self.setup_seconds}  # fmt: skip


def estimate(
    work_of: Callable[[str, int, int], Work],
    candidates: Sequence[str],
    examples: int,
    valid: int,
    folds: int,
    forward_seconds: float,
    setup_seconds: float = 0.0,
) -> Estimate:
    """The train stage's time for ``candidates`` on ``examples`` training rows: ``work_of(strategy, fit, valid)``
    counts one run's passes; ``folds`` > 0 cross-validates (``valid`` is then unused: each fold validates on its
    share), 0 trains each candidate once on the split; every run pays ``setup_seconds`` first."""
    if folds:
        held = examples // folds
        runs = [[work_of(name, examples - held, held) for name in candidates] for _ in range(folds)]
        finals = [work_of(name, examples, 0) for name in candidates]
        distinct = examples
    else:
        runs = [[work_of(name, examples, valid) for name in candidates]]
        finals = []
        distinct = examples + valid
    step = forward_seconds * TRAINING_STEP_COST

    def seconds(works: list[Work]) -> float:
        return (sum(w.forward for w in works) * forward_seconds + sum(w.trained for w in works) * step
                + max((w.pairs for w in works), default=0) * 2 * step)  # fmt: skip

    # The feature cache keys rows by content: every fold and candidate reading the frozen body shares one encoding.
    encodes = any(w.encoded for group in [*runs, finals] for w in group)
    shared = (distinct if encodes else 0) * forward_seconds + sum(seconds(group) for group in runs)
    final = [seconds([w]) for w in finals] or [0.0]
    count = len(candidates) * max(folds, 1) + (1 if finals else 0)
    setup = count * setup_seconds
    return Estimate(setup + shared + min(final), setup + shared + max(final), forward_seconds, count, setup_seconds)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(10, round(seconds, -1)):.0f} s"
    return f"about {round(seconds / 60):.0f} min"
