"""Drift checks on real data: how often does ``tlpipe monitor`` cry drift at new inputs from the training
distribution, and how often does it catch inputs that moved?

For each real dataset asked for (``benchmarks/real_data``), the default pipeline is run, export included, on a
labelled sample (16 per class, seed 0: the few-label case the product is for), in a project kept under
``benchmarks/.cache/drift``. The bundle's own code then embeds (``Predictor.outputs``, the exported graph's
``body_embedding``) and tests (``mmd_permutation_test``, the bundle's permutations and alpha) batches of inputs:

- ``held-out``: rows of the dataset's training pool that the sample did not draw: same distribution, never seen
  by the model or the reference. Its rejection rate is the false-alarm rate.
- ``held-out, training-rows reference`` and ``held-out, test + training reference``: the same batches against a
  reference of the labelled training rows alone, or of the bundle's test rows and the training rows together.
- ``another dataset``: inputs of another real dataset of the same modality.
- ``corrupted``: held-out rows damaged as inputs get damaged in production: texts with typos (15% of the
  characters dropped, doubled or swapped with a neighbour), images blurred (Gaussian, radius 2 px).

Each condition draws ``--repeats`` batches of each size in ``--sizes`` (seeded, without replacement within a
batch), tests each with ``--permutations`` permutations, and reports the share of batches whose p-value is below
each of ``--alphas``: the false-alarm rate on held-out rows, the detection rate on the others. Held-out rows are
training data of the benchmark datasets, so choosing ``serving.drift_alpha`` from them uses no test split.

    .venv/bin/python benchmarks/drift.py                                   # rotten_tomatoes and openclipart
    .venv/bin/python benchmarks/drift.py --datasets rotten_tomatoes --repeats 20

Results go to benchmarks/results/drift.json and drift.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from harness.pipeline_runs import SOURCES, write_sample
from harness.real_datasets import real_dataset
from harness.text_datasets import REPO
from harness.train_runs import merged, shipped_params

from tlpipe.datasets import INPUT, examples_per_class
from tlpipe.serving import Predictor, mmd_permutation_test

CACHE = REPO / "benchmarks" / ".cache" / "drift"
RESULTS = REPO / "benchmarks" / "results"
OTHER = {"rotten_tomatoes": "spam_assassin", "spam_assassin": "rotten_tomatoes", "openclipart": "mnist",
         "mnist": "openclipart", "tabler_icons": "openclipart", "reuters_r8": "rotten_tomatoes"}  # fmt: skip
STAGES = ("validate", "prepare", "fetch-model", "train", "calibrate", "evaluate", "export")
POOL_CAP = 1500  # held-out rows embedded per condition; batches are drawn from these


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["rotten_tomatoes", "openclipart"], choices=sorted(OTHER))
    parser.add_argument("--size", type=int, default=16, help="labelled examples per class of the trained bundle")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100, 200], help="inputs per checked batch")
    parser.add_argument("--repeats", type=int, default=50, help="batches per condition and size")
    parser.add_argument("--permutations", type=int, default=2000, help="per test (the smallest p is 1/(this + 1))")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.01, 0.001])
    parser.add_argument("--out", type=Path, default=RESULTS / "drift.json")
    args = parser.parse_args()
    started = time.perf_counter()
    results = [measure(name, args) for name in args.datasets]
    record = {"command": " ".join(["benchmarks/drift.py", *sys.argv[1:]]), "commit": _commit(),
              "seconds": round(time.perf_counter() - started), "datasets": results}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    table = markdown(record)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    dataset = real_dataset(name)
    pool, _ = dataset.tables()
    labelled = examples_per_class(pool, args.size, args.seed)
    bundle = trained_bundle(dataset, labelled, args.size, args.seed)
    predictor = Predictor(bundle)
    settings = predictor.drift_settings
    assert settings is not None, f"{bundle}: exported without a drift reference"
    with np.load(bundle / settings["reference"], allow_pickle=False) as stored:
        test_reference = stored["embeddings"]
    rng = np.random.default_rng(args.seed)
    unseen = pool[~pool[INPUT].isin(set(labelled[INPUT]))]
    held_out = unseen.iloc[rng.permutation(len(unseen))[:POOL_CAP]][INPUT].tolist()
    other_pool, _ = real_dataset(OTHER[name]).tables()
    other = other_pool.iloc[rng.permutation(len(other_pool))[:POOL_CAP]][INPUT].tolist()
    with tempfile.TemporaryDirectory() as scratch:
        corrupted = corrupt(held_out, dataset.modality, Path(scratch), rng)
        embedded = {
            "held-out": embed(predictor, held_out),
            "another dataset": embed(predictor, other),
            "corrupted": embed(predictor, corrupted),
        }
    train_reference = embed(predictor, labelled[INPUT].tolist())
    conditions = {
        "held-out": (embedded["held-out"], test_reference),
        "held-out, training-rows reference": (embedded["held-out"], train_reference),
        "held-out, test + training reference": (
            embedded["held-out"],
            np.concatenate([test_reference, train_reference]),
        ),
        "another dataset": (embedded["another dataset"], test_reference),
        "corrupted": (embedded["corrupted"], test_reference),
    }
    rates: dict[str, dict[str, dict[str, float]]] = {str(alpha): {} for alpha in args.alphas}
    for condition, (inputs, reference) in conditions.items():
        for size in args.sizes:
            p_values = np.array([
                mmd_permutation_test(
                    reference, inputs[rng.choice(len(inputs), size, replace=False)], args.permutations, rng
                )[1]
                for _ in range(args.repeats)
            ])  # fmt: skip
            for alpha in args.alphas:
                rates[str(alpha)].setdefault(condition, {})[str(size)] = float((p_values < alpha).mean())
        print(f"{name}: {condition}: {[rates[str(a)][condition] for a in args.alphas]}", flush=True)
    return {
        "dataset": name,
        "modality": dataset.modality,
        "other_dataset": OTHER[name],
        "labelled_per_class": args.size,
        "seed": args.seed,
        "reference": {"test split": len(test_reference), "training rows": len(train_reference)},
        "embedded": {condition: len(values) for condition, values in embedded.items()},
        "bundle_alpha": settings["alpha"],
        "permutations": args.permutations,
        "repeats": args.repeats,
        "corruption": "typos: 15% of characters dropped, doubled or swapped" if dataset.modality == "text"
        else "Gaussian blur, radius 2 px",
        "drift_rate": rates,  # alpha -> condition -> batch size -> share of batches called drift
    }  # fmt: skip


def trained_bundle(dataset: Any, labelled: pd.DataFrame, size: int, seed: int) -> Path:
    """The bundle the default pipeline exports for ``labelled`` (reused when a previous run left one)."""
    project = CACHE / f"{dataset.name}-{size}-{seed}"
    bundle = project / "models" / "bundle"
    if (bundle / "manifest.json").is_file():
        return bundle
    project.mkdir(parents=True, exist_ok=True)
    params = merged(shipped_params(), {
        "paths": {"raw_train": str(write_sample(project, dataset, labelled)), "raw_test": str(dataset.test_path)},
        "data": {"modality": dataset.modality},
        "model": {"source": SOURCES[dataset.modality]},
        "split": {"seed": seed},
        "train": {"seed": seed},
    })  # fmt: skip
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in STAGES:
        print(f"{dataset.name}: tlpipe {stage}", flush=True)
        subprocess.run([sys.executable, "-m", "tlpipe", stage], cwd=project, check=True, capture_output=True)
    return bundle


def embed(predictor: Predictor, inputs: list[str]) -> np.ndarray:
    """The bundle's body embeddings of ``inputs``, in batches of 32."""
    return np.concatenate(
        [predictor.outputs(inputs[i : i + 32], embeddings=True)[1] for i in range(0, len(inputs), 32)]
    )


def corrupt(inputs: list[str], modality: str, scratch: Path, rng: np.random.Generator) -> list[str]:
    """Texts with typos, or blurred copies of the images (written under ``scratch``)."""
    if modality == "text":
        return [typos(text, rng) for text in inputs]
    from PIL import Image, ImageFilter

    blurred = []
    for index, path in enumerate(inputs):
        with Image.open(path) as image:
            target = scratch / f"{index}.png"
            image.convert("RGB").filter(ImageFilter.GaussianBlur(radius=2)).save(target)
        blurred.append(str(target))
    return blurred


def typos(text: str, rng: np.random.Generator, rate: float = 0.15) -> str:
    characters, out, i = list(text), [], 0
    while i < len(characters):
        roll = rng.random()
        if roll < rate / 3:  # dropped
            i += 1
            continue
        if roll < 2 * rate / 3:  # doubled
            out += [characters[i], characters[i]]
        elif roll < rate and i + 1 < len(characters):  # swapped with the next
            out += [characters[i + 1], characters[i]]
            i += 1
        else:
            out.append(characters[i])
        i += 1
    return "".join(out)


def markdown(record: dict[str, Any]) -> str:
    lines = ["# Drift checks on real data: share of batches called drift", "",
             f"`{record['command']}` at {record['commit'][:10]}, {record['seconds']} s.", ""]  # fmt: skip
    for result in record["datasets"]:
        first = next(iter(result["drift_rate"].values()))
        sizes = list(next(iter(first.values())))
        lines += [
            f"## {result['dataset']} ({result['modality']}; bundle trained on {result['labelled_per_class']} "
            f"per class, seed {result['seed']})",
            "",
            f"Reference: {result['reference']['test split']} test-split embeddings (the bundle's); the training-rows "
            f"rows use the {result['reference']['training rows']} labelled rows instead, or as well. Another dataset: "
            f"{result['other_dataset']}. Corrupted: {result['corruption']}. {result['repeats']} batches per cell, "
            f"{result['permutations']} permutations each.",
            "",
            "| alpha | condition | " + " | ".join(f"{size} inputs" for size in sizes) + " |",
            "|---|---|" + "---:|" * len(sizes),
            *(
                f"| {alpha} | {condition} | " + " | ".join(f"{rates[size]:.2f}" for size in sizes) + " |"
                for alpha, by_condition in result["drift_rate"].items()
                for condition, rates in by_condition.items()
            ),
            "",
        ]
    lines += ["Held-out rows: the false-alarm rate (it should be near alpha). The others: the detection rate.", ""]
    return "\n".join(lines)


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
