"""A Prefect task that checks a folder of recent inputs for drift against the bundle's reference sample.

It runs the bundle's own serving code in-process (``tlpipe.serving``, the code of ``tlpipe monitor`` and
``predict.py --drift``), so the flow gets the report as a dict, and its errors as exceptions that say what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tlpipe import serving
from tlpipe.errors import TlpipeError

TEXT_SUFFIXES = frozenset({".txt", ".csv"})  # what serving.read_inputs reads for a text bundle


class DriftCheckError(TlpipeError):
    """The drift check has no bundle to check against, or no inputs folder to check."""


def input_files(inputs: Path, modality: str) -> list[str]:
    """The files in ``inputs`` (a folder, searched recursively, or one file) that the bundle's modality reads, sorted:
    none in an empty folder, which is too few to check, not an error. Empty (or blank) text files are left out: a
    day with no inputs in one file is not an error either."""
    if not inputs.is_dir():
        return [str(inputs)]
    suffixes = TEXT_SUFFIXES if modality == "text" else serving.IMAGE_SUFFIXES
    return [
        str(path)
        for path in sorted(inputs.rglob("*"))
        if path.is_file() and path.suffix.lower() in suffixes and not _blank_text(path, modality)
    ]


def _blank_text(path: Path, modality: str) -> bool:
    return modality == "text" and path.suffix.lower() == ".txt" and not path.read_text(encoding="utf-8").strip()


@task(cache_policy=NO_CACHE)
def check_drift(bundle: Path, inputs: Path, column: str | None = None, alpha: float | None = None) -> dict[str, Any]:
    """The drift report of ``inputs`` (a folder or file) against ``bundle``; ``checked`` is False, and ``drift`` False,
    when there are fewer inputs than a drift check needs."""
    if not (bundle / serving.MANIFEST).is_file():
        raise DriftCheckError(
            f"{bundle}: no bundle to check the inputs against; build one first with `dvc repro` (or `tlpipe run`)."
        )
    if not inputs.exists():
        raise DriftCheckError(
            f"{inputs}: no such folder; put the recent inputs to check there (text files with one input per line, "
            "CSV files with the `column` parameter, or images), or point the `inputs` parameter at them."
        )
    predictor = serving.Predictor(bundle)
    recent = serving.read_inputs(input_files(inputs, predictor.modality), [], column, predictor.modality)
    logger = get_run_logger()
    if len(recent) < serving.MIN_DRIFT_INPUTS:
        verdict = f"too few inputs to check: {len(recent)} in {inputs}, a drift check needs {serving.MIN_DRIFT_INPUTS}"
        logger.warning(verdict)
        return {"inputs": len(recent), "checked": False, "drift": False, "verdict": verdict}
    report = predictor.drift(recent, alpha=alpha)
    logger.info("Drift check of %d inputs in %s against %s: %s", len(recent), inputs, bundle, report["verdict"])
    return {**report, "checked": True}
