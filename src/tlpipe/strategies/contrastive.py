"""``contrastive``: the SetFit method. The body is first tuned on pairs of training examples with a
sentence-transformers pair loss (``tlpipe.contrastive``), then frozen while the head trains on its
features, as in ``linear_probe``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tlpipe.strategies.base import HeadOnly

# benchmarks/few_shot.py (benchmarks/results/few_shot.md): favoured over a linear probe and a full fine-tune at 8,
# 16 and 32 per class on both text datasets.
PAIR_TUNED_RECIPE = {"epochs": 30, "learning_rate": 2e-5, "head_learning_rate": 1e-2, "layer_decay": 1.0}


class Contrastive(HeadOnly):
    name = "contrastive"
    summary = "SetFit: the encoder tuned on same/different-class pairs, then the head"
    recipes = {"text": PAIR_TUNED_RECIPE}
    not_for = (
        "contrastive pair tuning is the SetFit method for sentence encoders; it has not been measured on other bodies"
    )
    changes_body = True
    tunes_body_on_pairs = True

    def prepare_body(self, tune: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        return tune()


STRATEGY = Contrastive()
