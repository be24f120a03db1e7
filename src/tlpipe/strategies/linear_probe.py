"""``linear_probe``: the head alone, on features the frozen body computes once."""

from __future__ import annotations

from tlpipe.strategies.base import HeadOnly

# The head-only recipe: many epochs at a high learning rate, since an epoch over cached features costs little
# (text: benchmarks/recipes.py, benchmarks/results/recipes.md; images: benchmarks/image_strategies.py,
# benchmarks/results/image_strategies.md, where it won on validation at 6, 24 and 48 training images per class on
# both datasets).
HEAD_ONLY_RECIPE = {"epochs": 30, "head_learning_rate": 1e-2, "layer_decay": 1.0}


class LinearProbe(HeadOnly):
    name = "linear_probe"
    summary = "head on cached frozen features"
    recipes = {"text": HEAD_ONLY_RECIPE, "image": HEAD_ONLY_RECIPE}


STRATEGY = LinearProbe()
