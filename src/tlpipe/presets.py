"""``preset``: fast | balanced | best, a named trade of run time for score (the user's words, as AutoGluon's).

A preset decides only what params.yaml leaves to it (a key set to null), so a value written there always wins:

- ``model.source: null``: which pretrained body. ``fast`` and ``balanced`` take the modality's default body (the
  model zoo's smallest of the modality); ``best`` takes ``auto``, the body ``tlpipe rank-models`` keeps among
  the installed zoo models of the data's modality (``model.candidates``), however long it takes to train.
- ``train.auto.frozen_body_only: null``: which strategies ``train.strategy: auto`` may try. ``fast`` tries only
  those that train a head on the frozen body's features (the body runs once over the data); ``balanced`` and
  ``best`` try what the modality's rule picks, fine-tuning included.

What each costs and scores on real data: benchmarks/README.md (the real-data suite). ``params.yaml`` ships
``balanced``: the default every figure of the demo comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PresetName = Literal["fast", "balanced", "best"]
# The params.yaml sections with keys a preset fills in: a stage that reads one also reads ``preset`` and
# ``data.modality`` (whose default body model.source null names), and dvc.yaml lists them for it.
FILLED_SECTIONS = ("model", "train")


@dataclass(frozen=True)
class Preset:
    """What a preset decides for the keys params.yaml leaves null."""

    name: str
    summary: str
    ranks_bodies: bool  # model.source null: rank the installed zoo models (auto), else the modality's default body
    frozen_body_only: bool  # train.auto.frozen_body_only null: auto tries only strategies on frozen features


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "fast",
            "the modality's default body, kept frozen: auto chooses among heads trained on its features",
            ranks_bodies=False,
            frozen_body_only=True,
        ),
        Preset(
            "balanced",
            "the modality's default body; auto chooses the strategy from the data, fine-tuning included",
            ranks_bodies=False,
            frozen_body_only=False,
        ),
        Preset(
            "best",
            "the installed zoo body the ranking on the training rows puts first (model.source auto); auto chooses "
            "the strategy, fine-tuning included: the strongest bodies take several times as long",
            ranks_bodies=True,
            frozen_body_only=False,
        ),
    )
}
