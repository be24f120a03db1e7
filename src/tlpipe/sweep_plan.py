"""A sweep's points and its verdict: which params.yaml overrides to try, and which run was best on validation.

A sweep tries settings as DVC experiments (``tlpipe.flows.sweep``); this module is the part that
needs no DVC or Prefect: parsing ``key=value1,value2`` axes, the grid of their combinations or a
seeded random sample of it, and the comparison of finished runs. The best run is the one with
the highest validation macro-F1 of the strategy its train stage kept; the test scores are shown
beside it for the record and never used to choose.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from typing import Any

import yaml

from tlpipe.errors import ConfigError

SCIENTIFIC = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")


@dataclass(frozen=True)
class SweepRun:
    """One finished experiment: its name, the overrides it ran with and its scores (None when it failed)."""

    name: str
    overrides: dict[str, Any]
    validation_macro_f1: float | None
    test_macro_f1: float | None
    baseline_macro_f1: float | None
    strategy: str | None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def parse_axes(specs: list[str]) -> dict[str, list[Any]]:
    """``["train.learning_rate=1e-4,5e-5", "train.strategy=full"]`` to ``{key: [values]}`` (YAML-typed values)."""
    axes: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key or not values:
            raise ConfigError(f"sweep axis {spec!r}: write it as <section>.<key>=<value>[,<value>...]")
        if key in axes:
            raise ConfigError(f"sweep axis {key!r} is given twice; list all its values in one --set")
        axes[key] = [yaml_value(value) for value in values.split(",")]
    if not axes:
        raise ConfigError("a sweep needs at least one axis: --set <section>.<key>=<value>,<value>")
    return axes


def yaml_value(text: str) -> Any:
    """A command-line value read as YAML (``3``, ``full``, ``null``, ``[a, b]``), ``1e-4`` as the float it means."""
    value = yaml.safe_load(text)
    # YAML 1.1 reads 1e-4 (no dot) as a string; a learning rate is what a user means by it.
    if isinstance(value, str) and SCIENTIFIC.fullmatch(text.strip()):
        return float(text)
    return value


def sweep_points(axes: dict[str, list[Any]], sample: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Every combination of the axes' values, or ``sample`` of them drawn at random (seeded) without repeats."""
    grid = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    if sample is None or sample >= len(grid):
        return grid
    if sample < 1:
        raise ConfigError(f"--sample {sample}: draw at least one point")
    return random.Random(seed).sample(grid, sample)


def run_from_experiment(name: str, overrides: dict[str, Any], metrics: dict[str, Any] | None) -> SweepRun:
    """A ``SweepRun`` from an experiment's ``reports/metrics.json`` (None: the experiment failed)."""
    if not metrics:
        return SweepRun(name, overrides, None, None, None, None)
    choice = metrics["strategy_choice"]
    return SweepRun(
        name=name,
        overrides=overrides,
        validation_macro_f1=choice["validation_macro_f1"][choice["chosen"]],
        test_macro_f1=metrics["finetuned"]["macro_f1"],
        baseline_macro_f1=metrics["baseline"]["macro_f1"],
        strategy=choice["chosen"],
    )


def best_by_validation(runs: list[SweepRun]) -> SweepRun | None:
    """The finished run with the highest validation macro-F1 (the first of equals); None if none finished."""
    finished = [run for run in runs if run.validation_macro_f1 is not None]
    return max(finished, key=lambda run: run.validation_macro_f1, default=None)  # type: ignore[arg-type, return-value]


def comparison_markdown(runs: list[SweepRun], best: SweepRun | None) -> str:
    """The runs as a Markdown table, best first by validation, with the command that promotes the best."""
    ordered = sorted(runs, key=lambda run: -1.0 if run.validation_macro_f1 is None else -run.validation_macro_f1)
    lines = [
        "| experiment | overrides | strategy | validation macro-F1 | test macro-F1 | baseline test macro-F1 |",
        "|---|---|---|---|---|---|",
    ]
    for run in ordered:
        settings = ", ".join(f"{key}={value}" for key, value in run.overrides.items())
        if run.validation_macro_f1 is None:
            lines.append(f"| {run.name} | {settings} | failed | | | |")
            continue
        marker = " (best)" if best and run.name == best.name else ""
        lines.append(
            f"| {run.name}{marker} | {settings} | {run.strategy} | {run.validation_macro_f1:.4f} "
            f"| {run.test_macro_f1:.4f} | {run.baseline_macro_f1:.4f} |"
        )
    verdict = (
        f"Best on validation: **{best.name}**. Promote it with `dvc exp apply {best.name}`, then commit."
        if best
        else "No run finished."
    )
    return "\n".join([*lines, "", verdict, "The choice uses validation macro-F1 only; test scores are for the record."])
