"""``scratch``: ``full`` on a randomly initialised body of the same architecture: the control that shows
what the pretrained weights bought."""

from __future__ import annotations

from tlpipe.strategies.base import AllBlocks


class Scratch(AllBlocks):
    name = "scratch"
    summary = "full on a randomly initialised body: the control"
    recipes = {
        "text": {"epochs": 5, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "layer_decay": 1.0},
        "image": {"epochs": 6, "learning_rate": 1e-3, "head_learning_rate": 1e-3, "layer_decay": 1.0},  # not measured
    }
    pretrained = False


STRATEGY = Scratch()
