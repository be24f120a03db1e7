"""The text datasets the studies share, and the labelled sample a study draws from a training table.

Two were made by this project: the demo's support tickets (``data/raw``, 6 classes, 20 test texts each) and
the transfer demo's work requests (``examples/transfer_demo_data.py``, 5 classes of plant-maintenance texts
full of in-house names no public model knows, 40 test texts each). The real ones of ``benchmarks/real_data``
(``REAL``; built first, ``benchmarks/build_datasets.py``) load by the same names, and only they may choose a
default (issue 29): a rule tuned on generated data is tuned to its generator.

A study that chooses a default never reads a test table: it trains on a labelled sample and scores on the
training rows the sample did not draw (``drawn_and_undrawn``), labelled data that neither the train stage
nor the test table ever saw.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd

from tlpipe.datasets import INPUT, LABEL, examples_per_class

REPO = Path(__file__).resolve().parents[2]
Tables = tuple[pd.DataFrame, pd.DataFrame]


def demo_tickets() -> Tables:
    """The demo's support tickets: (train, test) with the pipeline's input and label columns."""
    tables = (pd.read_csv(REPO / "data" / "raw" / name, dtype=str) for name in ("train.csv", "test.csv"))
    train, test = (table.rename(columns={"text": INPUT})[[INPUT, LABEL]] for table in tables)
    return train, test


def work_requests() -> Tables:
    """The transfer demo's work requests at its data seed (0): (train, test)."""
    tables = _transfer_demo_data().generate(seed=0)
    train, test = (pd.DataFrame(tables[name], columns=[INPUT, LABEL]) for name in ("train", "test"))
    return train, test


DATASETS: dict[str, Callable[[], Tables]] = {"support_tickets": demo_tickets, "work_requests": work_requests}
REAL = ("newsgroups", "reuters_r8", "rotten_tomatoes", "spam_assassin", "foldoc")  # benchmarks/real_data's texts


def load(dataset: str) -> Tables:
    """``dataset``'s (train, test) tables; an unknown name is an error that lists the known ones."""
    if dataset in REAL:
        from .real_datasets import real_dataset  # it imports this module

        return real_dataset(dataset).tables()
    if dataset not in DATASETS:
        raise KeyError(f"unknown dataset {dataset!r}; the text studies know {sorted(DATASETS) + list(REAL)}")
    return DATASETS[dataset]()


def drawn_and_undrawn(train: pd.DataFrame, size: int, seed: int) -> Tables:
    """The labelled sample ``examples_per_class`` draws, and the training rows it leaves out."""
    drawn = pd.concat(rows.sample(n=min(size, len(rows)), random_state=seed) for _, rows in train.groupby(LABEL))
    labelled = drawn.reset_index(drop=True)
    if not labelled.equals(examples_per_class(train, size, seed)):
        raise RuntimeError("tlpipe.datasets.examples_per_class draws differently now: update drawn_and_undrawn")
    return labelled, train.drop(index=drawn.index).reset_index(drop=True)


def _transfer_demo_data() -> ModuleType:
    # Loaded from its file, as examples/ is no package: no sys.path entry for the rest of the process to see.
    name = "transfer_demo_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)  # its dataclasses look themselves up here
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]
