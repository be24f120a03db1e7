"""Shared fixtures: a tiny locally-built model, tiny datasets and a throwaway project folder.

No test reaches the network: the hub is forced offline here, and every model a test loads is
created on disk by these fixtures and loaded through the same ``from_pretrained`` calls the
pipeline uses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from factories import make_table, write_project, write_tiny_bert

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tier last: fast feedback first, and in-process tests before any that start a Prefect server.

    A process that has run a temporary Prefect server (``prefect_test_harness``) can no longer fork
    DataLoader workers: they exit at once with status 1 (seen with Prefect 3.8.8 and torch 2.14;
    ``tlpipe train`` always runs in a process of its own, so the product is not affected).
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


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


@pytest.fixture
def params_writer() -> Callable[..., None]:
    return write_project
