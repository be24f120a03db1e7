"""Reading ``params.yaml``: its sections (``tlpipe.config``), then the checks across them.

Some settings are only wrong together: a baseline of the other modality, a strategy with no recipe for
the modality, a user's value that its strategy's recipe cannot take. Those checks need the modality
plug-in and the recipes, which themselves build on the config types; they live here, above both,
so that ``tlpipe.config`` imports neither.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from tlpipe.config import Params, TrainConfig, describe, validate_sections
from tlpipe.errors import ConfigError
from tlpipe.modalities import MODALITIES, get_modality, modality_settings
from tlpipe.presets import PRESETS
from tlpipe.sources import AUTO_SOURCE
from tlpipe.strategies import STRATEGIES, get_strategy, strategies_for, strategy_sections
from tlpipe.strategies.recipes import settings_for


def parse_params(raw: object, origin: str = "params.yaml") -> Params:
    """Build ``Params`` from a parsed YAML mapping; raise ``ConfigError`` naming each bad key."""
    params = validate_sections(raw, origin)
    check_modality_sections(params, origin)
    for key, train in (("train", params.train), ("pretrain.train", params.pretrain.train)):
        check_strategy_sections(train, key, origin)
    if problem := conflict_across_sections(params):
        raise ConfigError(f"{origin}: 1 invalid setting(s):\n  - {problem}")
    return with_preset(params)


def with_preset(params: Params) -> Params:
    """``params`` with the keys left null filled in by its preset (``tlpipe.presets``); a key set stays as set."""
    preset = PRESETS[params.preset]
    model, train = params.model, params.train
    if model.source is None:
        source = AUTO_SOURCE if preset.ranks_bodies else get_modality(params.data.modality).default_source
        model = model.model_copy(update={"source": source})
    if train.auto.frozen_body_only is None:
        auto = train.auto.model_copy(update={"frozen_body_only": preset.frozen_body_only})
        train = train.model_copy(update={"auto": auto})
    return params.model_copy(update={"model": model, "train": train})


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file. Run tlpipe from the project root, or pass --params PATH.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    params = parse_params(raw, origin=str(path))
    # dvc.yaml reads every section from the file, so a section left out is an error here too, not a silent default.
    missing = [name for name in Params.model_fields if name not in (raw or {})]
    if missing:
        raise ConfigError(
            f"{path}: missing section(s) {', '.join(repr(name) for name in missing)}; copy it from the params.yaml "
            "that ships with tlpipe (every key there has its default value)."
        )
    return params


def check_modality_sections(params: Params, origin: str = "params.yaml") -> None:
    """Validate the modalities' own keys of each section with the modality's model; raise ``ConfigError`` naming
    the key, and the allowed keys for one that neither the section nor any modality defines.

    Every modality's keys are checked, not only those of ``data.modality``: params.yaml carries them all.
    """
    owners: dict[str, dict[str, type[BaseModel]]] = {}
    for modality in MODALITIES:
        for section, model in modality_settings(modality).items():
            owners[section] = owners.get(section, {}) | {key: model for key in model.model_fields}
    for section, owned_keys in owners.items():
        config = getattr(params, section)
        given = config.model_extra or {}
        if unknown := [key for key in given if key not in owned_keys]:
            allowed = sorted([*type(config).model_fields, *owned_keys])
            raise ConfigError(
                f"{origin}: 1 invalid setting(s):\n  - unknown key '{unknown[0]}' in section '{section}'; "
                f"allowed keys: {', '.join(allowed)}"
            )
        for model in dict.fromkeys(owned_keys.values()):
            try:
                model.model_validate({key: value for key, value in given.items() if key in model.model_fields})
            except ValidationError as exc:
                raise ConfigError(describe(exc, origin, model, (section,))) from None


def check_strategy_sections(train: TrainConfig, key: str, origin: str = "params.yaml") -> None:
    """Validate each strategy's own section of ``train`` (found at ``key``) with its model; raise ``ConfigError``
    naming the key, and the allowed keys for one that is neither a setting nor a strategy's section."""
    sections = strategy_sections()
    for section, value in (train.model_extra or {}).items():
        if section not in sections:
            allowed = sorted([*TrainConfig.model_fields, *sections])
            raise ConfigError(
                f"{origin}: 1 invalid setting(s):\n  - unknown key '{section}' in section '{key}'; "
                f"allowed keys: {', '.join(allowed)}"
            )
        try:
            sections[section].model_validate(value or {})
        except ValidationError as exc:
            raise ConfigError(describe(exc, origin, sections[section], (*key.split("."), section))) from None


def conflict_across_sections(params: Params) -> str | None:
    """The first pair of settings that cannot go together, as a message naming the keys; None when they fit."""
    if params.data.modality not in MODALITIES:
        return f"data.modality: unknown modality {params.data.modality!r}; known: {', '.join(MODALITIES)}"
    modality = get_modality(params.data.modality)
    if params.evaluate.baseline not in ("auto", modality.baseline_name):
        return (
            f"evaluate.baseline: {params.evaluate.baseline} is not a baseline for data.modality {modality.name}; "
            f"use auto or {modality.baseline_name}"
        )
    named = [("train.strategy", params.train.strategy), ("pretrain.train.strategy", params.pretrain.train.strategy)]
    named += [("train.auto.compare", strategy) for strategy in params.train.auto.compare or ()]
    for key, name in named:
        if problem := _strategy_problem(name, modality.name):
            return f"{key}: {problem}"
    pretraining = params.pretrain.train.strategy
    if pretraining != "auto" and not get_strategy(pretraining).changes_body:
        return f"pretrain.train.strategy {pretraining} leaves the body as it was: use full or contrastive"
    for key, train in (("train", params.train), ("pretrain.train", params.pretrain.train)):
        if train.strategy != "auto":
            try:  # the recipe's values with the user's, checked together now rather than when training starts
                settings_for(train, train.strategy, modality.name)
            except ValidationError as exc:
                return f"{key}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
            except ConfigError as exc:
                return f"{key}: {exc}"
    return None


def _strategy_problem(name: str, modality: str) -> str | None:
    if name == "auto":
        return None
    if name not in STRATEGIES:
        return f"unknown strategy {name!r}; known: auto, {', '.join(STRATEGIES)}"
    strategy = get_strategy(name)
    if not strategy.applies_to(modality):
        return (
            f"{name} does not apply to data.modality {modality}: {strategy.not_for}. "
            f"Use auto or one of {', '.join(strategies_for(modality))}."
        )
    return None
