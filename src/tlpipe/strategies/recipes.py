"""Recipes: the settings whose good values depend on the strategy, filled in from its recipe.

Each strategy runs with its recipe for the modality, whether ``auto`` chose it or params.yaml names it: the
epochs and learning rates it was benchmarked with, since a head-only strategy wants many more epochs and a
higher learning rate than one that trains the body. A recipe key set in params.yaml (not null) overrides the
recipe; every other setting (batch size, seed, regularisation, pairs, device) is the user's. The train stage
records the settings it ran with and which came from the recipe.
"""

from __future__ import annotations

from pydantic import BaseModel

from tlpipe.config import TrainConfig
from tlpipe.errors import ConfigError
from tlpipe.strategies import get_strategy

RECIPE_KEYS = ("epochs", "learning_rate", "head_learning_rate", "layer_decay", "freeze_unfreeze.head_epochs")


def settings_for(train: TrainConfig, strategy: str, modality: str) -> TrainConfig:
    """``train`` as it runs ``strategy`` on ``modality``: the recipe under every recipe key ``train`` leaves to it.

    A key is left to the recipe when it is null, or was not given at all (a ``TrainConfig`` built in
    code); a value given overrides the recipe, under ``auto`` too. Raises ``ConfigError`` when the result is
    something the strategy refuses, naming the keys.
    """
    chosen = get_strategy(strategy)
    recipe = chosen.recipe(modality)
    settings = {**train.model_dump(), "strategy": strategy}
    for key in RECIPE_KEYS:
        section, _, nested = key.partition(".")
        if nested:
            given = getattr(train, section)
            if _left_to_recipe(train, section) or _left_to_recipe(given, nested):
                default = type(given).model_fields[nested].default
                settings[section] = {**settings[section], nested: recipe.get(section, {}).get(nested, default)}
        elif _left_to_recipe(train, key):
            settings[key] = recipe.get(key, TrainConfig.model_fields[key].default)
    filled = TrainConfig.model_validate(settings)
    if refusal := chosen.refuses(filled):
        raise ConfigError(refusal)
    return filled


def recipe_keys_used(train: TrainConfig) -> list[str]:
    """The recipe keys ``train`` (as the user gave it) leaves to the strategy's recipe."""
    used = []
    for key in RECIPE_KEYS:
        section, _, nested = key.partition(".")
        owner = getattr(train, section) if nested else train
        if (nested and _left_to_recipe(train, section)) or _left_to_recipe(owner, nested or key):
            used.append(key)
    return used


def _left_to_recipe(model: BaseModel, key: str) -> bool:
    return key not in model.model_fields_set or getattr(model, key) is None
