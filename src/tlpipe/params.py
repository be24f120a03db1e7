"""Reading ``params.yaml``: its sections (``tlpipe.config``), then the checks across them.

Some settings are only wrong together: a baseline of the other modality, a strategy the modality
refuses, a user's value that its strategy's recipe cannot take. Those checks need the modality
plug-in and the recipes, which themselves build on the config types; they live here, above both,
so that ``tlpipe.config`` imports neither.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from tlpipe.auto import settings_for
from tlpipe.config import Params, validate_sections
from tlpipe.errors import ConfigError
from tlpipe.modalities import MODALITIES, get_modality


def parse_params(raw: object, origin: str = "params.yaml") -> Params:
    """Build ``Params`` from a parsed YAML mapping; raise ``ConfigError`` naming each bad key."""
    params = validate_sections(raw, origin)
    if problem := conflict_across_sections(params):
        raise ConfigError(f"{origin}: 1 invalid setting(s):\n  - {problem}")
    return params


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
    for key, train in (("train", params.train), ("pretrain.train", params.pretrain.train)):
        if train.strategy != "auto":
            try:  # the recipe's values with the user's, checked together now rather than when training starts
                settings_for(train, train.strategy, modality.auto_rule)
            except ValidationError as exc:
                return f"{key}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
    refused = modality.unsupported_strategies
    named = [("train.strategy", params.train.strategy)]
    named += [("train.auto.compare", strategy) for strategy in params.train.auto.compare or ()]
    for key, strategy in named:
        if strategy in refused:
            return f"{key}: {strategy} does not apply to data.modality {params.data.modality}: {refused[strategy]}"
    return None
