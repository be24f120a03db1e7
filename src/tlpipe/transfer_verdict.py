"""Did transfer help? The fine-tuned model's macro-F1 gain over a reference model, with a bootstrap interval.

The bootstrap is paired: each resample draws test examples with replacement and scores both models
on that same draw, so the interval is of the gain itself and the examples both models find easy or
hard cancel out. The interval is the percentile one. Macro-F1 is ``tlpipe.metrics``' one, the
score reports/metrics.json carries: every class counts in the mean, and a class a resample neither
contains nor predicts scores 0 for both models, so the two means always divide by the same number
of classes.

The verdict reads the interval: ``helped`` when its lower end is above zero, ``did_not_help`` when
its upper end is not above zero, ``inconclusive`` in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from tlpipe.metrics import macro_f1_of_rows

Verdict = Literal["helped", "inconclusive", "did_not_help"]

# Resamples are scored in chunks of about this many drawn examples, so 100 000 resamples stay in memory.
_DRAWS_PER_CHUNK = 2_000_000


@dataclass(frozen=True)
class Gain:
    """The fine-tuned model's macro-F1 minus ``reference``'s on the test set, its interval and what it means."""

    reference: str
    point: float
    low: float
    high: float
    confidence: float
    samples: int
    examples: int
    verdict: Verdict
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The gain as plain JSON-ready values."""
        return asdict(self)


def transfer_gain(
    model: Sequence[int],
    reference: Sequence[int],
    actual: Sequence[int],
    classes: int,
    reference_name: str,
    samples: int,
    confidence: float,
    seed: int,
) -> Gain:
    """The model's macro-F1 gain over ``reference`` (predicted class ids), with a paired bootstrap interval."""
    ours, theirs, truth = (np.asarray(ids, dtype=np.int64) for ids in (model, reference, actual))
    if not len(truth) or not len(ours) == len(theirs) == len(truth):
        raise ValueError(
            f"The gain needs one prediction per test example from each model: got {len(ours)} and {len(theirs)} "
            f"predictions for {len(truth)} examples."
        )
    if samples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(f"Need samples >= 1 and 0 < confidence < 1, got {samples} and {confidence}.")

    def gains_on(resamples: np.ndarray) -> np.ndarray:
        model_f1, reference_f1 = (macro_f1_of_rows(ids[resamples], truth[resamples], classes) for ids in (ours, theirs))
        return model_f1 - reference_f1

    point = float(gains_on(np.arange(len(truth))[None, :])[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, _DRAWS_PER_CHUNK // len(truth))
    gains = [
        gains_on(rng.integers(0, len(truth), size=(min(chunk, samples - start), len(truth))))
        for start in range(0, samples, chunk)
    ]
    tail = (1.0 - confidence) / 2
    low, high = (float(q) for q in np.quantile(np.concatenate(gains), [tail, 1.0 - tail]))
    verdict: Verdict = "helped" if low > 0 else "did_not_help" if high <= 0 else "inconclusive"
    figures = (
        f"macro-F1 {point:+.3f} over the {reference_name}, {confidence * 100:g}% bootstrap interval {low:+.3f} to "
        f"{high:+.3f} on {len(truth)} test examples"
    )
    return Gain(
        reference=reference_name,
        point=point,
        low=low,
        high=high,
        confidence=confidence,
        samples=samples,
        examples=len(truth),
        verdict=verdict,
        message=_message(verdict, figures, reference_name, confidence),
    )


def _message(verdict: Verdict, figures: str, reference_name: str, confidence: float) -> str:
    if verdict == "helped":
        return f"Transfer helped: {figures}."
    if verdict == "inconclusive":
        return (
            f"Transfer's gain is not established at {confidence * 100:g}% confidence: {figures}; the interval includes "
            "zero. More test examples would narrow it, and more labelled training examples may widen the gap; until "
            f"then the {reference_name} is as good a choice."
        )
    return (
        f"Transfer did not help here: {figures}. What to try: more labelled examples; a model.source closer to this "
        "data, or pretraining on your own domain with the `pretrain` stage and paths.source_data; with few labels, "
        "train.strategy linear_probe or contrastive; check the labels, since noisy labels hold any model back. "
        f"The {reference_name} may be all this task needs: it is a valid production choice."
    )
