"""Shared fixtures: a tiny locally-built model, tiny datasets and a throwaway project folder.

No test reaches the network: the hub is forced offline here, and every model a test loads is
created on disk by these fixtures and loaded through the same ``from_pretrained`` calls the
pipeline uses.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from factories import ARCHITECTURE, REPO, make_table, run_every_stage, write_images, write_project, write_tiny_bert

# The suite's bit-equality tests hold on CPU; on a GPU machine they would compare nondeterministic kernels.
# Set before torch is imported, and inherited by the dvc/tlpipe subprocesses of the slow tier.
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
# DVC stage commands call the `tlpipe` console script of this environment.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


RELIABILITY = Path(__file__).parent / "reliability"
TEMPORARY_FOLDERS = {"tmp_path", "tmp_path_factory"}
# Built once per session and only read, so a test that loads one still runs in memory.
SHARED_MODELS = {"tiny_model_dir", "tiny_image_weights"}
# The slow tier's longest tests (90 to 125 s each on two cores, the rest under 75 s) start it, so that
# the two workers end together instead of one finishing alone with a long test started last.
LONGEST = {"test_deployment.py", "test_dvc_pipeline.py", "test_learning_curve.py", "test_sweep.py"}


TIERS = ("core", "stages", "reliability", "slow")
COLLECTED_TIERS = pytest.StashKey[dict[str, list[str]]]()  # every collected test's tiers, before -m or -k deselect


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by -m and -k: tests/test_tiers.py sees them all
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One tier marker per test (``tier``), and the slow tier last, its longest tests first: fast feedback
    first, and in-process tests before any that start a Prefect server.

    A process that has run a temporary Prefect server (``prefect_test_harness``) can no longer fork
    DataLoader workers: they exit at once with status 1 (seen with Prefect 3.8.8 and torch 2.14;
    ``tlpipe train`` always runs in a process of its own, so the product is not affected).
    """
    for item in items:
        if item.get_closest_marker("slow") is None:
            item.add_marker(tier(item))
    config.stash[COLLECTED_TIERS] = {
        item.nodeid: [name for name in TIERS for _ in item.iter_markers(name)] for item in items
    }
    items.sort(key=lambda item: (item.get_closest_marker("slow") is not None, item.path.name not in LONGEST))


def tier(item: pytest.Item) -> str:
    """``reliability`` under tests/reliability/, ``stages`` for a test that gets a temporary folder, else ``core``."""
    if RELIABILITY in item.path.parents:
        return "reliability"
    return "stages" if asks_for_a_temporary_folder(item) else "core"


def asks_for_a_temporary_folder(item: pytest.Item) -> bool:
    """Whether the test, or a fixture it uses other than the shared tiny models, asks for tmp_path(_factory)."""
    fixtures = item._fixtureinfo  # type: ignore[attr-defined]  # pytest's record of what the test requests
    pending, seen = list(fixtures.initialnames), set()
    while pending:
        name = pending.pop()
        if name in seen or name in SHARED_MODELS:
            continue
        if name in TEMPORARY_FOLDERS:
            return True
        seen.add(name)
        definitions = fixtures.name2fixturedefs.get(name)
        if definitions:
            pending.extend(definitions[-1].argnames)  # the last one is the definition closest to the test
    return False


@pytest.fixture
def train_table() -> pd.DataFrame:
    return make_table(12)


@pytest.fixture
def test_table() -> pd.DataFrame:
    return make_table(4, offset=100)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT and its WordPiece tokenizer, saved with save_pretrained (safetensors)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def project(
    tmp_path: Path,
    tiny_model_dir: Path,
    train_table: pd.DataFrame,
    test_table: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A project folder (cwd) with raw data, and params.yaml using the tiny model."""
    monkeypatch.chdir(tmp_path)
    write_project(tmp_path, tiny_model_dir, train_table, test_table)
    return tmp_path


@pytest.fixture(scope="session")
def finished_project(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The ``project`` fixture's project after every stage, its prediction sets at coverage 0.5 (the few held-out
    examples support a threshold below 1, so the sets are not every label); built once for the run
    (tests/built_once.py). Read it, or take ``finished_copy`` to change it."""
    from built_once import built_once

    def build(root: Path) -> None:
        write_project(root, tiny_model_dir, make_table(12), make_table(4, offset=100), {"serving": {"coverage": 0.5}})
        run_every_stage(root)

    return built_once(tmp_path_factory, "finished-project", build)


@pytest.fixture
def finished_copy(finished_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of ``finished_project``; the cwd."""
    root = Path(shutil.copytree(finished_project, tmp_path / "project", symlinks=True))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def params_writer() -> Callable[..., None]:
    return write_project


@pytest.fixture(scope="session")
def tiny_image_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny timm model's full state dict (classifier included) in safetensors, as a user's own weights would be."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-timm") / "weights.safetensors"
    save_file(timm.create_model("test_efficientnet", pretrained=False).state_dict(), path)
    return path


@pytest.fixture
def image_project(tmp_path: Path, tiny_image_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An image project folder (cwd): class folders of coloured images, and params.yaml using the tiny timm model."""
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "data" / "raw" / "train", 10, 0)
    write_images(tmp_path / "data" / "raw" / "test", 4, 100)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update(raw_train="data/raw/train", raw_test="data/raw/test")
    params["data"].update(modality="image", min_examples_per_class=4, min_image_size=16)
    params["model"].update(source=str(tiny_image_weights), architecture=ARCHITECTURE)
    params["train"].update(
        strategy="freeze_unfreeze",
        epochs=2,
        batch_size=8,
        learning_rate=1e-3,
        head_learning_rate=1e-2,
        layer_decay=0.8,
        freeze_unfreeze={"head_epochs": 1},
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path
