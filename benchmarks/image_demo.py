"""The image demo's headline figures: the default pipeline, the pixel baseline and the ``scratch`` control, by seed.

For each seed, a copy of the demo project (``examples/image_demo.py``: generated shape photos,
pretrained EfficientNet-Lite0) is reproduced with ``dvc repro evaluate`` twice: once with the
defaults (``train.strategy: auto``) and once with ``train.strategy: scratch`` (the same network
from random weights, with the scratch recipe ``auto`` would use). ``split.seed`` and ``train.seed``
are the seed; the images are the same for every seed. Test macro-F1 of the fine-tuned model and
of the pixel baseline come from ``reports/metrics.json``, so this measures exactly what a user
running the demo gets. Results: ``benchmarks/results/image_demo.json``.

Usage: ``.venv/bin/python benchmarks/image_demo.py [--seeds 0 1 2]`` (about 5 minutes a seed on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
from image_demo import write_project  # noqa: E402

from tlpipe.strategies import get_strategy  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "image_demo.json"
DVC = str(Path(sys.executable).with_name("dvc"))


def reproduce(project: Path, overrides: dict[str, dict]) -> dict:
    """Apply ``overrides`` to params.yaml, ``dvc repro evaluate``, and return the metrics and the wall time."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    started = time.perf_counter()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # stages call tlpipe
    subprocess.run([DVC, "repro", "evaluate"], cwd=project, check=True, capture_output=True, env=env)
    seconds = time.perf_counter() - started
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    return {
        "strategy": metrics["strategy"],
        "reason": (metrics.get("strategy_choice") or {}).get("reason"),
        "finetuned_macro_f1": metrics["finetuned"]["macro_f1"],
        "baseline_macro_f1": metrics["baseline"]["macro_f1"],
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tlpipe-image-demo-") as scratch:
        template = Path(scratch) / "template"
        write_project(template, train_per_class=40, test_per_class=20, seed=0)
        for seed in args.seeds:
            project = Path(scratch) / f"seed{seed}"
            shutil.copytree(template, project, symlinks=True)
            seeds = {"split": {"seed": seed}, "train": {"seed": seed}}
            default = reproduce(project, seeds)
            scratch_recipe = {**get_strategy("scratch").recipe("image"), "strategy": "scratch", "seed": seed}
            control = reproduce(project, {"train": scratch_recipe})
            runs.append({"seed": seed, "default": default, "scratch": control})
            print(f"seed {seed}: default ({default['strategy']}) {default['finetuned_macro_f1']:.4f}, "
                  f"scratch {control['finetuned_macro_f1']:.4f}, pixel baseline {default['baseline_macro_f1']:.4f}",
                  flush=True)  # fmt: skip
    summary = {
        name: (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        for name, values in {
            "default": [r["default"]["finetuned_macro_f1"] for r in runs],
            "pixel_baseline": [r["default"]["baseline_macro_f1"] for r in runs],
            "scratch": [r["scratch"]["finetuned_macro_f1"] for r in runs],
        }.items()
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2) + "\n")
    print("\n| model | test macro-F1 (mean ± sd over seeds) |\n|---|---|")
    for name, (mean, sd) in summary.items():
        print(f"| {name} | {mean:.3f} ± {sd:.3f} |")
    print(f"\nWritten to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
