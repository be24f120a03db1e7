"""``contrastive``: the SetFit method. The body is first tuned on pairs of training examples with a
sentence-transformers pair loss (``tlpipe.contrastive``), then frozen while the head trains on its
features, as in ``linear_probe``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field

from tlpipe.config import Section, TrainConfig
from tlpipe.run_estimate import Work
from tlpipe.strategies.base import HeadOnly
from tlpipe.wording import counted

# benchmarks/few_shot.py (benchmarks/results/few_shot.md): favoured over a linear probe and a full fine-tune at 8,
# 16 and 32 per class on both text datasets.
PAIR_TUNED_RECIPE = {"epochs": 30, "learning_rate": 2e-5, "head_learning_rate": 1e-2, "layer_decay": 1.0}
PAIR_SECTION = "contrastive"  # train.contrastive: the settings of every strategy that tunes its body on pairs


class ContrastiveSettings(Section):
    """``train.contrastive``: tune the body on labelled pairs (the SetFit method), then train the head on its features.

    Pairs scale with the data: ``pairs_per_example`` per training example, at most ``max_pairs``,
    half of them from the same class and half from different classes. ``final_body`` applies when
    cross-validation chose the strategy (``tlpipe.stages.train``).
    """

    pairs_per_example: int = Field(20, ge=2, le=1000, description="pairs drawn per training example")
    max_pairs: int = Field(2000, ge=2, description="cap on the pairs of one epoch, so large datasets stay practical")
    epochs: int = Field(1, ge=1, le=100, description="passes over the pairs")
    loss: Literal["cosine_similarity", "contrastive", "online_contrastive"] = Field(
        "cosine_similarity", description="sentence-transformers pair loss"
    )
    final_body: Literal["tune", "fold_average"] = Field(
        "tune",
        description="under cross-validation, the final model's body: tuned again on every example (tune), or the "
        "element-wise mean of the folds' tuned bodies, with no further tuning (fold_average: cheaper)",
    )


class Contrastive(HeadOnly):
    name = "contrastive"
    summary = "SetFit: the encoder tuned on same/different-class pairs, then the head"
    recipes = {"text": PAIR_TUNED_RECIPE}
    not_for = (
        "contrastive pair tuning is the SetFit method for sentence encoders; it has not been measured on other bodies"
    )
    changes_body = True
    tunes_body_on_pairs = True
    settings_model = ContrastiveSettings
    settings_section = PAIR_SECTION

    def prepare_body(self, tune: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        return tune()

    def work(self, train: TrainConfig, fit: int, valid: int, blocks: int) -> Work:
        pairs = self.settings(train)
        # The tuned body encodes its features afresh: they are not the pretrained body's the cache holds.
        return Work(forward=fit + valid, pairs=min(fit * pairs.pairs_per_example, pairs.max_pairs) * pairs.epochs)

    def card_lines(self, history: Mapping[str, Any]) -> list[str]:
        tuning = history.get("body_tuning")
        if not tuning:
            return []
        if tuning.get("method") == "fold_average":
            return [
                f"Contrastive phase: the encoder is the element-wise mean of the {tuning['folds']} cross-validation "
                "folds' tuned encoders (`train.contrastive.final_body: fold_average`), tuned on "
                f"{counted(tuning['pairs'], 'pair')} in all "
                f"({tuning['similar_pairs']} from the same class), sentence-transformers `{tuning['loss']}` loss in "
                f"{tuning.get('precision', 'fp32')}; then the head was trained on its "
                "features of every example.",
            ]
        return [
            f"Contrastive phase: {counted(tuning['pairs'], 'pair')} ({tuning['similar_pairs']} from the same class) "
            f"for {counted(tuning['epochs'], 'epoch')}, sentence-transformers `{tuning['loss']}` loss in "
            f"{tuning.get('precision', 'fp32')}; then the head was trained on the tuned "
            "encoder's features.",
        ]


STRATEGY = Contrastive()


def pair_settings(train: TrainConfig) -> ContrastiveSettings:
    """The settings of tuning a body on pairs (``train.contrastive``), for the code that tunes it."""
    return STRATEGY.settings(train)
