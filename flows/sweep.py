"""Sweep settings as DVC experiments and name the best on validation: ``tlpipe sweep`` runs this flow.

Each point of the grid (or of a seeded random sample of it) is a DVC experiment with its
overrides (``dvc exp run --queue -S``); the queue runs them ``jobs`` at a time in temporary
copies of the project. The comparison goes to ``paths.sweep`` (``comparison.json`` and
``comparison.md``) and to a Prefect table artifact; the best run by validation macro-F1 is named
with the command that promotes it (``dvc exp apply``). Test scores are shown, never used.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from tlpipe.artifacts import write_json, write_text
from tlpipe.params import load_params
from tlpipe.sweep_plan import best_by_validation, comparison_markdown, run_from_experiment, sweep_points
from tlpipe.tasks.dvc_experiments import experiment_metrics, queue_experiments, run_queue


@flow(name="tlpipe-sweep", log_prints=True)
def sweep(
    axes: dict[str, list[Any]],
    root: str = ".",
    sample: int | None = None,
    seed: int = 0,
    jobs: int = 1,
    prefix: str | None = None,
) -> dict[str, Any]:
    """Run the points of ``axes`` as DVC experiments; return the comparison and the best run by validation."""
    logger = get_run_logger()
    paths = load_params(Path(root) / "params.yaml").paths
    points = sweep_points(axes, sample, seed)
    prefix = prefix or time.strftime("sweep-%Y%m%d-%H%M%S")
    logger.info("Sweep %s: %d runs over %s, %d at a time", prefix, len(points), ", ".join(axes), jobs)
    named = queue_experiments(root, points, prefix)
    run_queue(root, jobs)
    metrics = experiment_metrics(root, list(named), paths.metrics.as_posix())
    runs = [run_from_experiment(name, overrides, metrics[name]) for name, overrides in named.items()]
    best = best_by_validation(runs)
    table = comparison_markdown(runs, best)
    folder = Path(root) / paths.sweep
    write_json(folder / "comparison.json", {"sweep": prefix, "runs": [run.to_dict() for run in runs],
                                           "best": best.name if best else None})  # fmt: skip
    write_text(folder / "comparison.md", f"# Sweep {prefix}\n\n{table}\n")
    create_markdown_artifact(key="sweep-comparison", markdown=table, description=f"Sweep {prefix}")
    logger.info("Sweep %s:\n%s", prefix, table)
    failed = [run.name for run in runs if run.validation_macro_f1 is None]
    if failed:
        logger.warning("%d of %d runs failed: %s (dvc queue logs <name> shows why)", len(failed), len(runs), failed)
    return {"runs": [run.to_dict() for run in runs], "best": best.name if best else None}
