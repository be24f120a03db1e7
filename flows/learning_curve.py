"""How many labels do I need? Test macro-F1 against labelled examples per class: ``tlpipe learning-curve`` runs this.

Each point (a size of ``split.examples_per_class`` × a seed × a compared setting) is a queued DVC
experiment that reproduces the pipeline up to ``evaluate`` (no export) in its own temporary copy of
the project, so points run ``jobs`` at a time without contending for the workspace's DVC lock, and
each can be reproduced or applied later (``dvc exp apply <name>``). Points are reported as they
finish; a failed point is reported with its log and the others go on. The curve goes to
``paths.learning_curve`` (``curve.md``, ``curve.json``, ``points.csv`` for ``dvc plots show``,
``curve.png``), replaced as a whole, and to a Prefect markdown artifact.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from tlpipe.artifacts import atomic_directory, write_json, write_text
from tlpipe.learning_curve_plan import (
    DEFAULT_SIZES,
    PointResult,
    check_points,
    curve_markdown,
    curve_points,
    curve_rows,
    plot_learning_curve,
    point_result,
    points_csv,
    scratch_pairs,
    scratch_setting,
)
from tlpipe.params import load_params
from tlpipe.tasks.dvc_experiments import (
    ExperimentError,
    experiment_json,
    experiment_text,
    queue_experiments,
    queue_logs,
    run_queue,
)
from tlpipe.transfer_verdict import transfer_gain

# Evaluate scores the fine-tuned model and the baseline; export adds nothing to the curve.
TARGETS = ["evaluate"]


@flow(name="tlpipe-learning-curve", log_prints=True)
def learning_curve(
    settings: dict[str, dict[str, Any]],
    sizes: Sequence[int] = DEFAULT_SIZES,
    seeds: int = 3,
    root: str = ".",
    jobs: int = 1,
    prefix: str | None = None,
) -> list[dict[str, Any]]:
    """Run every size × seed (0..seeds-1) × setting {name: overrides} up to evaluate; return the curve's rows."""
    logger = get_run_logger()
    root = str(Path(root).resolve())
    params_path = Path(root) / "params.yaml"
    paths = load_params(params_path).paths
    points = curve_points(settings, sorted(sizes), list(range(seeds)))
    check_points(yaml.safe_load(params_path.read_text(encoding="utf-8")), points)
    prefix = prefix or time.strftime("curve-%Y%m%d-%H%M%S")
    logger.info(
        "Learning curve %s: %d runs = %d sizes × %d seeds × %d settings (%s), %d at a time",
        prefix, len(points), len(sizes), seeds, len(settings), ", ".join(settings), jobs,
    )  # fmt: skip
    named = queue_experiments(root, [point.overrides for point in points], prefix, TARGETS)
    by_name = dict(zip(named, points, strict=True))
    results: dict[str, PointResult] = {}
    progress = create_progress_artifact(0.0, key="learning-curve-progress", description=f"Learning curve {prefix}")

    def report(name: str, commit: str | None) -> None:
        point = by_name.get(name)
        if point is None:  # another command's experiment that was waiting in the same queue
            return
        try:
            metrics = experiment_json(root, commit, paths.metrics.as_posix()) if commit else None
        except ExperimentError as exc:
            logger.warning("%s: %s", name, exc)
            metrics = None
        result = results[name] = point_result(point, name, metrics)
        done = f"point {len(results)}/{len(points)} done: {point.label()}"
        if result.finished:
            logger.info("%s -> macro-F1 %.4f (baseline %.4f)", done, result.test_macro_f1, result.baseline_macro_f1)
        else:
            logger.warning("%s -> FAILED (experiment %s; `dvc queue logs %s`):\n%s", done, name, name,
                           queue_logs(root, name))  # fmt: skip
        update_progress_artifact(progress, 100.0 * len(results) / len(points))

    commits = run_queue(root, jobs, on_done=report)
    ordered = [results.get(name) or point_result(point, name, None) for name, point in by_name.items()]
    scratch = scratch_setting(settings)
    if scratch:
        ordered = _with_gains_over_scratch(root, ordered, scratch, commits, paths.evaluation.as_posix())
    rows = curve_rows(ordered)
    table = curve_markdown(rows)
    curve = {
        "curve": prefix,
        "sizes": sorted(sizes),
        "seeds": list(range(seeds)),
        "settings": settings,
        "rows": [row.to_dict() for row in rows],
        "points": [result.to_dict() for result in ordered],
    }
    with atomic_directory(Path(root) / paths.learning_curve) as folder:
        write_text(folder / "curve.md", f"# Learning curve {prefix}\n\n{table}\n")
        write_text(folder / "points.csv", points_csv(ordered))
        write_json(folder / "curve.json", curve)
        plot_learning_curve(rows, folder / "curve.png")
    create_markdown_artifact(key="learning-curve", markdown=table, description=f"Learning curve {prefix}")
    logger.info("Learning curve %s, in %s:\n%s", prefix, paths.learning_curve, table)
    failed = [result.experiment for result in ordered if not result.finished]
    if failed:
        logger.warning("%d of %d points failed: %s (`dvc queue logs <name>` shows why)", len(failed), len(ordered),
                       ", ".join(failed))  # fmt: skip
    return [row.to_dict() for row in rows]


def _with_gains_over_scratch(
    root: str, results: list[PointResult], scratch: str, commits: dict[str, str | None], evaluation: str
) -> list[PointResult]:
    """Each run's gain over the scratch run on the same labelled sample, with its bootstrap interval and verdict."""
    import pandas as pd

    def predictions(result: PointResult) -> pd.DataFrame:
        text = experiment_text(root, commits[result.experiment] or "", f"{evaluation}/predictions.csv")
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)

    gains: dict[str, dict[str, Any]] = {}
    for result, control in scratch_pairs(results, scratch):
        ours, theirs = predictions(result), predictions(control)
        labels = sorted(set(ours["actual"]) | set(ours["finetuned"]) | set(theirs["finetuned"]))
        ids = {label: index for index, label in enumerate(labels)}
        gain = transfer_gain(
            [ids[label] for label in ours["finetuned"]],
            [ids[label] for label in theirs["finetuned"]],
            [ids[label] for label in ours["actual"]],
            len(labels),
            f"scratch run ({control.experiment})",
            samples=2000,
            confidence=0.95,
            seed=0,
        )
        gains[result.experiment] = gain.to_dict()
    return [dataclasses.replace(r, over_scratch=gains.get(r.experiment)) for r in results]
