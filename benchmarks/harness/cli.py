"""A study is a configuration; ``main(study)`` is its command line: run the grid, write the JSON and Markdown."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .files import write_atomic
from .grid import BENCHMARKS, Setting, plan, run_grid
from .report import CONFIDENCE, RESAMPLES, compare, markdown, summarise
from .version import code_version

REPO = BENCHMARKS.parent
RESULTS = BENCHMARKS / "results"
CACHE = BENCHMARKS / ".cache"
FORMAT = 1


class StudyError(ValueError):
    """A study's configuration or command line asks for something the harness cannot do; the message says what."""


@dataclass(frozen=True)
class Study:
    """What a study measures: ``worker`` ("module:function") on datasets × settings × sizes × seeds.

    ``reference`` names the setting every other is compared with, or maps each setting to its own.
    ``default_settings`` are those run without ``--settings`` (None: all). ``sections`` adds the study's own
    Markdown after the harness's tables, from the cell records. ``dataset_sizes`` limits a dataset to some
    sizes."""

    name: str
    title: str
    description: str
    worker: str
    datasets: tuple[str, ...]
    settings: tuple[Setting, ...]
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    reference: str | Mapping[str, str]
    metric: str = "macro_f1"
    default_settings: tuple[str, ...] | None = None
    sections: Callable[[list[dict[str, Any]]], list[str]] | None = None
    dataset_sizes: Mapping[str, tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        names = [setting.name for setting in self.settings]
        if len(set(names)) != len(names):
            raise StudyError(f"{self.name}: two settings share a name in {names}")
        if ":" not in self.worker:
            raise StudyError(f"{self.name}: worker {self.worker!r} is not 'module:function'")
        references = [self.reference] if isinstance(self.reference, str) else list(self.reference.values())
        unknown = [n for n in [*references, *(self.default_settings or ())] if n not in names]
        if unknown:
            raise StudyError(f"{self.name}: {unknown} name no setting; the settings are {names}")

    def reference_of(self, setting: str) -> str:
        """The setting ``setting`` is compared with (itself where the mapping leaves it out)."""
        return self.reference if isinstance(self.reference, str) else self.reference.get(setting, setting)

    def select(self, patterns: Sequence[str] | None) -> list[Setting]:
        """The settings whose names match any of ``patterns`` (shell-style), or the default ones."""
        if patterns is None:
            chosen = self.default_settings or [s.name for s in self.settings]
            return [s for s in self.settings if s.name in chosen]
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(s.name, pattern) for s in self.settings):
                raise StudyError(f"--settings {pattern!r} matches none of {[s.name for s in self.settings]}")
        return [s for s in self.settings if any(fnmatch.fnmatchcase(s.name, p) for p in patterns)]


def parser_for(study: Study) -> argparse.ArgumentParser:
    """The standard arguments, with the study's docstring as the help text."""
    parser = argparse.ArgumentParser(
        description=study.description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=list(study.datasets), choices=list(study.datasets))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(study.sizes), help="labelled examples per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(study.seeds))
    every = [s.name for s in study.settings]
    listed = ", ".join(every) if len(every) <= 12 else f"{len(every)} settings, named in the description"
    default = ", ".join(s.name for s in study.select(None))
    parser.add_argument("--settings", nargs="+", metavar="PATTERN",
                        help=f"settings to run, shell patterns (default: {default}; all: {listed})")  # fmt: skip
    parser.add_argument("--fresh", action="store_true", help="run every cell again, ignoring the cache")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from --out; run nothing")
    parser.add_argument("--cached-only", action="store_true",
                        help="report the cells the cache holds for this code; run no other")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / f"{study.name}_grid.json",
                        help="the results JSON (the Markdown goes beside it; default: %(default)s)")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=CACHE / study.name, help="cached cells (default: %(default)s)")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--confidence", type=float, default=CONFIDENCE, help="bootstrap interval's level")
    parser.add_argument("--cell-timeout", type=float, help="seconds after which a cell is stopped and failed")
    return parser


# What a run records about itself; --report-only keeps it when it rebuilds the report.
RUN_META = ("command", "code_version", "started", "wall_seconds", "not_run")


def main(study: Study, argv: Sequence[str] | None = None) -> int:
    """Parse the standard arguments, run the study's grid (or only rebuild its report); 1 if a cell failed."""
    args = parser_for(study).parse_args(argv)
    command = " ".join([f"benchmarks/{study.name}.py", *(sys.argv[1:] if argv is None else argv)])
    if args.report_only:
        if not args.out.is_file():
            raise StudyError(f"--report-only: {args.out} does not exist; run the grid first")
        results = _harness_results(args.out)
        records = results["cells"]
        meta = {k: results[k] for k in RUN_META if k in results}
    else:
        _harness_results(args.out)  # refuse to replace a file the harness did not write before spending hours
        version = code_version(REPO)
        cells = plan(args.datasets, study.select(args.settings), args.sizes, args.seeds, study.dataset_sizes)
        started, clock = datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter()
        print(f"{study.name}: {len(cells)} cells, code {version}", flush=True)
        records = run_grid(cells, study.worker, version, args.cache, args.fresh, args.cell_timeout,
                           progress=lambda line: print(line, flush=True), cached_only=args.cached_only)  # fmt: skip
        meta = {"command": command, "code_version": version, "started": started,
                "wall_seconds": time.perf_counter() - clock}  # fmt: skip
        if args.cached_only:
            meta["not_run"] = len(cells) - len(records)
    table = write_report(study, records, args.out, meta, args.resamples, args.confidence)
    print(table)
    return 1 if any(record["status"] != "ok" for record in records) else 0


def write_report(
    study: Study,
    records: list[dict[str, Any]],
    out: Path,
    meta: Mapping[str, Any],
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> str:
    """Write every cell with the summary and comparisons to ``out`` (JSON) and the table beside it (.md)."""
    summary = summarise(records, study.metric)
    comparisons = compare(records, study.reference_of, resamples, confidence)
    failures = [record for record in records if record["status"] != "ok"]
    sections = study.sections([r for r in records if r["status"] == "ok"]) if study.sections else []
    table = markdown(study.title, study.metric, summary, comparisons, failures, study.reference_of, sections)
    used = dict.fromkeys(record["setting"] for record in records)
    results = {
        "harness": FORMAT, "study": study.name, **meta, "worker": study.worker, "metric": study.metric,
        "settings": {s.name: {"params": s.params, "sizes": s.sizes} for s in study.settings if s.name in used},
        "reference": {name: study.reference_of(name) for name in used},
        "bootstrap": {"resamples": resamples, "confidence": confidence},
        "summary": summary, "comparisons": comparisons, "cells": records,
    }  # fmt: skip
    write_atomic(out, json.dumps(results, indent=1) + "\n")
    write_atomic(out.with_suffix(".md"), table)
    return table


def _harness_results(path: Path) -> dict[str, Any]:
    """The harness results at ``path`` ({} if none); a file written otherwise is an earlier script's, kept."""
    if not path.is_file():
        return {}
    results = json.loads(path.read_text())
    if results.get("harness") != FORMAT:
        raise StudyError(
            f"{path} was written by the study's script before the harness (its results are cited in "
            "benchmarks/README.md), so the harness will not replace it: pass --out with another path"
        )
    return results
