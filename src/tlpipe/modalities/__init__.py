"""Modalities (texts, images): everything that differs between kinds of input, behind one interface.

A modality is one package with two modules: ``modality`` exposing ``MODALITY``, an instance of
``tlpipe.modalities.base.Modality`` (its reader, data checks, preprocessing, model family, baseline and
export signature), and ``settings`` exposing ``SETTINGS``, its own keys of params.yaml sections as
pydantic models (light, so that reading params.yaml never imports a model family). Stages, strategies,
training, evaluation and export only talk to that interface. Adding a modality is a new package and
one line in ``MODALITIES``; ``data.modality`` in params.yaml names the entry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tlpipe.modalities.base import Modality

MODALITIES = {
    "text": "tlpipe.modalities.text",
    "image": "tlpipe.modalities.image",
}


def get_modality(name: str) -> Modality:
    """The plug-in registered as ``name`` (imported on first use, so texts never import image code)."""
    if name not in MODALITIES:
        from tlpipe.errors import ConfigError

        raise ConfigError(f"unknown modality {name!r}; known: {', '.join(MODALITIES)}")
    return importlib.import_module(f"{MODALITIES[name]}.modality").MODALITY


def modality_settings(name: str) -> dict[str, type[BaseModel]]:
    """Per params.yaml section, the model of the keys the modality ``name`` owns there."""
    return importlib.import_module(f"{MODALITIES[name]}.settings").SETTINGS
