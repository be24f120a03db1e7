"""The reliability table's machinery: one row per bad input, run as a user would run it.

A row arranges a bad input in a copy of a finished project, runs one ``tlpipe`` command in
process, and states the exit status it must end with and the words its message (what the user
sees: stderr, stdout and tlpipe's log) must contain.
A failing row must leave every output of the project as it was: only the files the command
exists to report with (the validation report, the parity report) may change, and no temporary
file may be left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tlpipe.cli import main

# What a failing command may rewrite: the report of why it failed.
REPORTS = frozenset({"reports/validation.json", "reports/parity.json"})
# Inputs and the workspace lock, not outputs.
NOT_OUTPUTS = ("data/raw/", "params.yaml", ".tlpipe.lock")
RESULTS: list[tuple[str, int, str]] = []  # every row run: name, exit status, message (printed by conftest)


@dataclass(frozen=True)
class Case:
    """One row: what goes wrong, the command that meets it, and what the user must see."""

    name: str
    arrange: Callable[[Path], object]
    command: list[str]
    status: int
    words: tuple[str, ...]
    may_change: frozenset[str] = field(default=REPORTS)
    env: dict[str, str] = field(default_factory=dict)  # environment variables set while the command runs
    then: Callable[[Path], object] | None = None  # a further check on the project afterwards

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Outcome:
    status: int
    message: str
    changed: list[str]


def outputs_of(root: Path) -> dict[str, str]:
    """sha256 of every file in the project that is not an input, by path relative to ``root``."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and not path.relative_to(root).as_posix().startswith(NOT_OUTPUTS)
    }


def run_case(case: Case, root: Path) -> Outcome:
    """Arrange ``case`` in ``root`` (the cwd), run its command in process, and report what it did."""
    case.arrange(root)
    before = outputs_of(root)
    stderr, stdout, log = io.StringIO(), io.StringIO(), io.StringIO()
    with (
        _environment(case.env),
        contextlib.redirect_stderr(stderr),
        contextlib.redirect_stdout(stdout),
        _logging_to(log),
    ):
        try:
            status = main(case.command)
        except SystemExit as exit_:  # argparse and the predictor exit this way
            status = exit_.code if isinstance(exit_.code, int) else 1
    after = outputs_of(root)
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    message = stderr.getvalue() + stdout.getvalue() + log.getvalue()
    return Outcome(status, message, [p for p in changed if p not in case.may_change])


def check_case(case: Case, root: Path) -> Outcome:
    """Run ``case`` and assert its status, its message and, when it fails, that earlier outputs are untouched."""
    outcome = run_case(case, root)
    RESULTS.append((case.name, outcome.status, outcome.message))
    assert outcome.status == case.status, f"exit status {outcome.status}, expected {case.status}:\n{outcome.message}"
    missing = [word for word in case.words if word not in outcome.message]
    assert not missing, f"message lacks {missing}:\n{outcome.message}"
    if case.status != 0:
        assert outcome.changed == [], f"a failing command changed outputs: {outcome.changed}"
    if case.then is not None:
        case.then(root)
    return outcome


@contextlib.contextmanager
def _logging_to(stream: io.StringIO) -> Iterator[None]:
    # Under pytest the root logger already has handlers, so the CLI's basicConfig prints nothing.
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tlpipe")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
