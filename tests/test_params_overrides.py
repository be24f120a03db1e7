"""A run's settings land in params.yaml, validated, with the file's comments kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from factories import REPO

from tlpipe.errors import ConfigError
from tlpipe.params import load_params
from tlpipe.params_overrides import apply_overrides
from tlpipe.strategies import get_strategy


@pytest.fixture
def params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    return path


def test_dotted_overrides_are_written_and_the_comments_kept(params: Path) -> None:
    changed = apply_overrides(params, {"train.epochs": 3, "train.freeze_unfreeze.head_epochs": 2})

    assert changed == ["train.epochs", "train.freeze_unfreeze.head_epochs"]
    assert load_params(params).train.epochs == 3
    assert get_strategy("freeze_unfreeze").settings(load_params(params).train).head_epochs == 2
    assert "# The only config file." in params.read_text()


def test_a_params_file_replaces_whole_sections(params: Path, tmp_path: Path) -> None:
    other = tmp_path / "weekly.yaml"
    weekly = {"cross_validate_below": None, "folds": "auto", "validation_fraction": 0.25, "seed": 7}
    other.write_text(yaml.safe_dump({"split": weekly}))

    changed = apply_overrides(params, {}, other)

    assert changed == ["split.seed", "split.validation_fraction"]
    assert load_params(params).split.seed == 7


def test_unchanged_settings_leave_the_file_untouched(params: Path) -> None:
    before = params.stat().st_mtime_ns

    assert apply_overrides(params, {"train.epochs": load_params(params).train.epochs}) == []
    assert params.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.learning_rate": -1}, "learning_rate"),
        ({"trian.epochs": 3}, "no section 'trian'"),
        ({"train.epoch": 3}, "epoch"),
    ],
)
def test_a_bad_override_is_refused_and_params_yaml_kept(params: Path, overrides: dict, message: str) -> None:
    before = params.read_text()

    with pytest.raises(ConfigError, match=message):
        apply_overrides(params, overrides)
    assert params.read_text() == before
