"""Recipes: the settings whose good values depend on the strategy, filled in from its recipe.

Each strategy runs with its recipe for the modality, whether ``auto`` chose it or params.yaml names it: the
epochs and learning rates it was benchmarked with, since a head-only strategy wants many more epochs and a
higher learning rate than one that trains the body. A recipe key set in params.yaml (not null) overrides the
recipe; every other setting (batch size, seed, regularisation, pairs, device) is the user's. The train stage
records the settings it ran with and which came from the recipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from tlpipe.config import TrainConfig
from tlpipe.errors import ConfigError
from tlpipe.strategies import get_strategy, strategy_sections

RECIPE_KEYS = ("epochs", "learning_rate", "head_learning_rate", "layer_decay")  # any strategy's recipe may set


def recipe_keys(strategy: str) -> tuple[str, ...]:
    """The keys ``strategy``'s recipes fill: ``RECIPE_KEYS``, then those of its own section (``section.key``)."""
    chosen = get_strategy(strategy)
    own = {
        f"{chosen.section}.{key}"
        for recipe in chosen.recipes.values()
        for key in recipe.get(chosen.section, {}) if chosen.section
    }  # fmt: skip
    return RECIPE_KEYS + tuple(sorted(own))


def settings_for(train: TrainConfig, strategy: str, modality: str) -> TrainConfig:
    """``train`` as it runs ``strategy`` on ``modality``: the recipe under every recipe key ``train`` leaves to it.

    A key is left to the recipe when it is null, or was not given at all (a ``TrainConfig`` built in
    code); a value given overrides the recipe, under ``auto`` too. Every strategy's section comes out
    validated, with its defaults. Raises ``ConfigError`` when the result is something the strategy refuses,
    naming the keys.
    """
    chosen = get_strategy(strategy)
    recipe = chosen.recipe(modality)
    given = train.model_dump(exclude_unset=True)
    sections = {section: given_section(train, section) for section in strategy_sections()}
    settings: dict[str, Any] = {**train.model_dump(exclude=set(train.model_extra or {})), "strategy": strategy}
    for key in recipe_keys(strategy):
        section, _, nested = key.partition(".")
        if nested and _left_to_recipe(sections[section], nested):
            sections[section].pop(nested, None)
            if nested in recipe.get(section, {}):
                sections[section][nested] = recipe[section][nested]
        elif not nested and _left_to_recipe(given, key):
            settings[key] = recipe.get(key, TrainConfig.model_fields[key].default)
    settings |= {section: model.model_validate(sections[section]) for section, model in strategy_sections().items()}
    filled = TrainConfig.model_validate(settings)
    if refusal := chosen.refuses(filled):
        raise ConfigError(refusal)
    return filled


def recipe_keys_used(train: TrainConfig, strategy: str) -> list[str]:
    """The keys of ``strategy``'s recipe that ``train`` (as the user gave it) leaves to the recipe."""
    given = train.model_dump(exclude_unset=True)
    used = []
    for key in recipe_keys(strategy):
        section, _, nested = key.partition(".")
        if _left_to_recipe(given_section(train, section) if nested else given, nested or key):
            used.append(key)
    return used


def given_section(train: TrainConfig, section: str) -> dict[str, Any]:
    """The keys of ``train.<section>`` that were given (in params.yaml or in code), as a mapping."""
    value = (train.model_extra or {}).get(section) or {}
    return dict(value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value)


def _left_to_recipe(given: Mapping[str, Any], key: str) -> bool:
    return given.get(key) is None
