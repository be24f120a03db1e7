"""What cross-validation costs: the default pipeline against the previous default, stage by stage.

Runs every stage (``tlpipe.stages.STAGES``, as ``dvc repro`` would) on the demo texts at
``--per-class`` labelled examples per class in fresh projects taking turns: params.yaml as
shipped (with few labels, k-fold cross-validation and a final model on every label), the
previous default (``split.cross_validate_below: 0``: a held-out 20% chooses; compared with the
linear probe only, ``train.auto.compare: [linear_probe]``; the contrastive phase in fp32,
``train.mixed_precision: off``, as it ran on every CPU), and ``previous_bf16``, the previous
choice in today's precision (bf16 contrastive phase on CPUs with bf16 instructions), which
separates what cross-validation costs from what the precision saves; ``three_folds`` is the default with
``split.folds: 3``, as it was before ``auto`` took 2 folds from 40 labels a class. Prints and writes each stage's
seconds and the ratios of the train stage and of the whole run of the default against each other setting.

    .venv/bin/python benchmarks/default_run_cost.py                    # 8 per class, 2 rounds, in-process
    .venv/bin/python benchmarks/default_run_cost.py --processes        # each stage its own process, as dvc repro
    .venv/bin/python benchmarks/default_run_cost.py --per-class 16 --rounds 1
    .venv/bin/python benchmarks/default_run_cost.py --per-class 60 --processes --settings default three_folds \
        --output benchmarks/results/default_run_cost_folds.json     # the demo's size: 2 folds against 3

Results: benchmarks/results/default_run_cost.json (default_run_cost_processes.json with --processes).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml

from tlpipe.artifacts import write_json
from tlpipe.cli import run_stage
from tlpipe.stages import STAGES

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "default_run_cost.json"
PREVIOUS = {"split": {"cross_validate_below": 0}, "train": {"auto": {"compare": ["linear_probe"]}}}
SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    "previous": {"split": PREVIOUS["split"], "train": PREVIOUS["train"] | {"mixed_precision": "off"}},
    # The previous choice with today's bf16 contrastive phase: what cross-validation costs, apart from the precision.
    "previous_bf16": PREVIOUS,
    "three_folds": {"split": {"folds": 3}},
}


@contextlib.contextmanager
def project(root: Path, per_class: int, changes: dict[str, dict[str, Any]]) -> Iterator[Path]:
    """A fresh copy of the demo project in ``root`` with these params.yaml changes, as the working directory."""
    for name in ("data/raw/train.csv", "data/raw/test.csv"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["split"]["examples_per_class"] = per_class
    for section, values in changes.items():
        for key, value in values.items():
            params[section][key] = params[section][key] | value if isinstance(value, dict) else value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = Path.cwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(before)


def timed_pipeline(root: Path, per_class: int, changes: dict[str, dict[str, Any]], processes: bool) -> dict[str, float]:
    """Seconds of each stage, run in order in a fresh project: in this process, or each as ``tlpipe <stage>`` in
    its own process as ``dvc repro`` runs it (imports and model loading included)."""
    seconds = {}
    with project(root, per_class, changes):
        for stage in STAGES:
            started = time.perf_counter()
            if processes:
                command = [sys.executable, "-m", "tlpipe", stage.replace("_", "-")]
                subprocess.run(command, check=True, capture_output=True)
            else:
                run_stage(stage)
            seconds[stage] = time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=8, help="labelled examples per class (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="turns of the settings (default 2)")
    parser.add_argument(
        "--processes", action="store_true", help="run each stage as its own `tlpipe <stage>` process, as dvc repro does"
    )
    parser.add_argument(
        "--settings", nargs="+", choices=list(SETTINGS), default=["default", "previous", "previous_bf16"],
        help="the settings taking turns; the default is compared with each other one (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"default: {RESULTS.name}, or {RESULTS.stem}_processes.json with --processes, in {RESULTS.parent}",
    )
    args = parser.parse_args()
    if "default" not in args.settings or len(args.settings) < 2:
        parser.error("--settings: name default and at least one setting to compare it with")
    args.output = args.output or RESULTS.with_stem(RESULTS.stem + "_processes" * args.processes)
    logging.basicConfig(level=logging.WARNING)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in args.settings}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for name in args.settings:
                folder = Path(scratch) / f"{name}-{round_}"
                runs[name].append(timed_pipeline(folder, args.per_class, SETTINGS[name], args.processes))
                print(f"round {round_ + 1} {name:<13} " + "  ".join(f"{k} {v:.0f}s" for k, v in runs[name][-1].items()))
    median = {
        name: {stage: statistics.median(run[stage] for run in members) for stage in STAGES}
        for name, members in runs.items()
    }
    total = {name: sum(stages.values()) for name, stages in median.items()}
    ratios = {
        f"default_over_{name}": {
            "train_stage": median["default"]["train"] / median[name]["train"],
            "whole_run": total["default"] / total[name],
        }
        for name in args.settings
        if name != "default"
    }
    write_json(
        args.output,
        {
            "command": f"benchmarks/default_run_cost.py --per-class {args.per_class} --rounds {args.rounds}"
            + " --processes" * args.processes
            + f" --settings {' '.join(args.settings)}",
            "cpu_threads": torch.get_num_threads(),
            "per_class": args.per_class,
            "median_seconds": median,
            "total_seconds": total,
            **ratios,
            "runs": runs,
        },
    )
    for name, ratio in ratios.items():
        other = name.removeprefix("default_over_")
        print(
            f"{args.per_class}/class, default against {other}: train stage {median['default']['train']:.0f}s vs "
            f"{median[other]['train']:.0f}s ({ratio['train_stage']:.2f}x); whole run {total['default']:.0f}s vs "
            f"{total[other]:.0f}s ({ratio['whole_run']:.2f}x)"
        )


if __name__ == "__main__":
    main()
