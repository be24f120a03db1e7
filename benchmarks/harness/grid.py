"""The grid of cells and how each one runs: in a subprocess of its own, its result cached under the cell's key."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import write_atomic

# The folder that holds this package: the child imports it (and the studies beside it) from there.
BENCHMARKS = Path(__file__).resolve().parents[1]
LOG_TAIL = 4000


@dataclass(frozen=True)
class Setting:
    """A named configuration of the thing measured; ``sizes`` limits it to those sizes (None: every size)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    sizes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        json.dumps(self.params)  # a cell's payload and key are JSON: fail when the study is built, not mid-grid


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a setting on a dataset at a size (labelled examples per class) with a seed."""

    dataset: str
    setting: str
    params: Mapping[str, Any]
    size: int
    seed: int

    def key(self, code_version: str, worker: str) -> str:
        """sha256 of what decides the result: the code, the worker, the setting's params, dataset, size, seed.
        The setting's name is left out, so two names for the same params share one run."""
        what = [code_version, worker, self.params, self.dataset, self.size, self.seed]
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        return f"{self.dataset} {self.size}/class seed {self.seed} {self.setting}"


def plan(
    datasets: Sequence[str],
    settings: Sequence[Setting],
    sizes: Sequence[int],
    seeds: Sequence[int],
    dataset_sizes: Mapping[str, Sequence[int]] | None = None,
) -> list[Cell]:
    """Every cell, the smallest sizes first (they are quick and matter most), a seed's settings side by side.
    ``dataset_sizes`` limits a dataset to those sizes (one too small for a size has no rows left to score)."""
    limits = dataset_sizes or {}
    return [
        Cell(dataset, setting.name, setting.params, size, seed)
        for size in sorted(sizes)
        for dataset in datasets
        if dataset not in limits or size in limits[dataset]
        for seed in seeds
        for setting in settings
        if setting.sizes is None or size in setting.sizes
    ]


def run_grid(
    cells: Sequence[Cell],
    worker: str,
    code_version: str,
    cache: Path,
    fresh: bool = False,
    timeout: float | None = None,
    progress: Callable[[str], None] = print,
    cached_only: bool = False,
) -> list[dict[str, Any]]:
    """Each cell's record (``status`` ok or failed), from ``cache`` where a cell ran before with this code, else
    from ``worker`` ("module:function") run in a subprocess. Failed cells are not cached, so a rerun retries them.
    ``cached_only``: the cached cells alone, nothing run (a suite that spans sessions, reported as it stands)."""
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    records = []
    with _stopped_by_sigterm(), tempfile.TemporaryDirectory(prefix="harness-") as folder:
        scratch = Path(folder)  # shared by the grid's cells: a model snapshot, a feature cache
        for index, cell in enumerate(cells, 1):
            key = cell.key(code_version, worker)
            stored = cache / f"{key}.json"
            if stored.is_file() and not fresh:
                record = {**json.loads(stored.read_text()), **_identity(cell, key), "cached": True}
            elif cached_only:
                progress(f"cell {index}/{len(cells)} {key[:12]} {cell.describe()}: not run (--cached-only)")
                continue
            else:
                record = {**run_cell(cell, worker, scratch, timeout), **_identity(cell, key), "cached": False}
                if record["status"] == "ok":
                    write_atomic(stored, json.dumps(record))
            records.append(record)
            progress(f"cell {index}/{len(cells)} {key[:12]} {cell.describe()}: {_outcome(record)} "
                     f"[{time.perf_counter() - started:.0f} s elapsed]")  # fmt: skip
    return records


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit, so that ``run_cell`` kills the running cell's process group and
    the scratch folder is removed. Python's default ends this process at once, and the cell ran on as an orphan,
    holding a core (seen when a study was stopped with ``kill``)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cell(cell: Cell, worker: str, scratch: Path, timeout: float | None = None) -> dict[str, Any]:
    """Run ``worker`` on ``cell`` in a subprocess; its result, or ``status: failed`` with the error."""
    payload = {"worker": worker, "cell": {**_identity(cell, None), "scratch": str(scratch)}}
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        request, answer, log = (Path(folder) / name for name in ("payload.json", "result.json", "log.txt"))
        request.write_text(json.dumps(payload))
        # The child imports the worker's module from whatever this process can import.
        importable = [str(BENCHMARKS), *(p or os.getcwd() for p in sys.path)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(importable)}
        command = [sys.executable, "-m", "harness.cell_process", str(request), str(answer)]
        # Its own process group, so that a timeout or a stopped study ends the processes the cell started too (a
        # pipeline cell runs each stage as one): killing the cell alone left its `tlpipe train` running, holding a
        # core and slowing every cell after it.
        with (
            log.open("w") as output,
            subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            ) as process,
        ):
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return _failed(f"ran past the {timeout:g} s limit", log)
            except BaseException:
                _kill_group(process)
                raise
        if code != 0:
            return _failed(_exit_reason(code), log)
        return {"status": "ok", **json.loads(answer.read_text())}


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the cell's process group (the cell and every process it started), then reap the cell."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _identity(cell: Cell, key: str | None) -> dict[str, Any]:
    identity = {"dataset": cell.dataset, "setting": cell.setting, "params": cell.params, "size": cell.size,
                "seed": cell.seed}  # fmt: skip
    return identity if key is None else {**identity, "key": key}


def _exit_reason(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"exited with status {code}"


def _failed(reason: str, log: Path) -> dict[str, Any]:
    return {"status": "failed", "error": reason, "log_tail": log.read_text(errors="replace")[-LOG_TAIL:]}


def _outcome(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"FAILED ({record['error']})"
    scores = ", ".join(f"{name} {value:.3f}" for name, value in record["score"].items())
    took = "cached" if record["cached"] else f"{record['seconds']:.1f} s"
    return f"{scores} ({took})"
