"""A Prefect task that writes a run's settings into ``params.yaml`` before DVC reproduces the stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tlpipe.params_overrides import apply_overrides


@task(cache_policy=NO_CACHE)
def apply_run_settings(root: str, params_file: str | None, overrides: dict[str, Any]) -> list[str]:
    """Apply a deployment's ``params_file`` and ``overrides`` to ``root``/params.yaml; return the keys changed."""
    changed = apply_overrides(Path(root) / "params.yaml", overrides, Path(root, params_file) if params_file else None)
    get_run_logger().info("params.yaml: %s", f"changed {', '.join(changed)}" if changed else "unchanged")
    return changed
