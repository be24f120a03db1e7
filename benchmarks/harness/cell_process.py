"""The subprocess one cell runs in: ``python -m harness.cell_process PAYLOAD RESULT``.

PAYLOAD is a JSON file ``{"worker": "module:function", "cell": {...}}``; the function takes the cell and
returns ``{"score": {name: number}, "predictions": [...], "actual": [...], "details": {...}}`` (all but
``score`` optional). RESULT receives that with the call's wall ``seconds``. A crash exits non-zero, and the
parent records the traceback this process printed.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from numbers import Real
from pathlib import Path
from typing import Any


class WorkerResultError(ValueError):
    """A worker returned something the harness cannot report."""


def checked(result: Any, worker: str) -> dict[str, Any]:
    """``result`` if it has a score dict of numbers and, where given, as many predictions as actual labels."""
    if not isinstance(result, dict) or not isinstance(result.get("score"), dict):
        raise WorkerResultError(f"{worker} returned {type(result).__name__}, not a dict with a 'score' dict")
    if not all(isinstance(value, Real) for value in result["score"].values()):
        raise WorkerResultError(f"{worker}'s score has a value that is not a number: {result['score']}")
    if len(result.get("predictions", [])) != len(result.get("actual", [])):
        raise WorkerResultError(f"{worker} returned predictions and actual labels of different lengths")
    return result


def main(payload_path: str, result_path: str) -> None:
    payload = json.loads(Path(payload_path).read_text())
    module, _, name = payload["worker"].partition(":")
    function = getattr(importlib.import_module(module), name)
    started = time.perf_counter()
    result = checked(function(payload["cell"]), payload["worker"])
    seconds = time.perf_counter() - started
    Path(result_path).write_text(json.dumps({**result, "seconds": seconds}))


if __name__ == "__main__":
    main(*sys.argv[1:])
