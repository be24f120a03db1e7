"""The frozen body's features through the feature cache: rows the cache holds come back without loading the body."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig
from tlpipe.frozen_features import frozen_encoder
from tlpipe.modalities import get_modality

TEXTS = ["refund my card please", "the parcel never came", "cannot log in to my account"]


@pytest.fixture
def text_modality(monkeypatch: pytest.MonkeyPatch) -> tuple[object, list[str]]:
    """The text modality, recording each time it loads a body."""
    modality = get_modality("text")
    loads: list[str] = []
    load = modality.load_pretrained

    def counted_load(snapshot, *args, **kwargs):
        loads.append(str(snapshot))
        return load(snapshot, *args, **kwargs)

    monkeypatch.setattr(modality, "load_pretrained", counted_load)
    return modality, loads


def encoder(tmp_path: Path, snapshot: Path, modality: object):
    paths = PathsConfig(snapshot=str(snapshot), feature_cache=str(tmp_path / "features"))
    manifest = {"files": {"model.safetensors": "a digest"}}
    preprocess = PreprocessConfig(max_length=32)  # the tiny model reads 64 tokens at most
    return frozen_encoder(paths, ModelConfig(), preprocess, modality, manifest, classes=3)  # type: ignore[arg-type]


def test_cached_rows_come_back_without_loading_the_body_and_new_rows_load_it_once(
    tmp_path: Path, tiny_model_dir: Path, text_modality
) -> None:
    modality, loads = text_modality
    first = encoder(tmp_path, tiny_model_dir, modality)(TEXTS)
    assert first.shape[0] == len(TEXTS) and loads == [str(tiny_model_dir)]

    again = encoder(tmp_path, tiny_model_dir, modality)
    assert np.array_equal(again(TEXTS), first)
    assert np.array_equal(again(TEXTS[:2]), first[:2])
    assert len(loads) == 1  # every row was cached: the body stayed on disk

    again(["a text the cache has never seen", "and another one"])
    again(["a third new text"])
    assert len(loads) == 2  # loaded once for both misses
