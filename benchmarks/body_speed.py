"""How fast each body of the model zoo encodes on this machine, frozen: the speed `tlpipe models` shows.

Every zoo model installed here is snapshotted, loaded and run by tlpipe's own code path (``fetch_snapshot``, the
modality's ``load_pretrained`` and ``preprocessor``, ``feature_cache.encode_features``), as ``tlpipe rank-models``
and a linear probe run it:

- texts: --items texts long enough to fill ``preprocess.max_length`` (128 tokens: the worst case);
- images: --items 256 px PNGs of noise, decoded and resized by the weights' own transform (speed does not depend
  on the pixels).

Each figure is the median of --repeats timings after one untimed batch, and the models of a modality take turns
(A, B, A, B) so that load from other jobs hits them alike; the ratio to the modality's default body (MiniLM,
EfficientNet-Lite0) is the steadier figure on a shared machine.

    .venv/bin/python benchmarks/body_speed.py            # about 3 minutes on 2 CPU cores with the four bodies

Results go to benchmarks/results/body_speed.json and .md, and the speeds to src/tlpipe/model_speed.json, which
`tlpipe models` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from tlpipe import model_zoo
from tlpipe.config import PreprocessConfig
from tlpipe.feature_cache import encode_features
from tlpipe.modalities import get_modality
from tlpipe.sources import fetch_snapshot

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PACKAGE_SPEEDS = REPO / "src" / "tlpipe" / model_zoo.SPEEDS_FILE
DEFAULT_BODY = {"text": "all-MiniLM-L6-v2", "image": "EfficientNet-Lite0"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=64, help="texts or images encoded per timing (default 64)")
    parser.add_argument("--batch-size", type=int, default=32, help="encoding batch (default 32)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per body; the median is kept (default 5)")
    parser.add_argument("--out", type=Path, default=RESULTS / "body_speed.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    preprocess = PreprocessConfig.model_validate(yaml.safe_load((REPO / "params.yaml").read_text())["preprocess"])
    installed = [known for known in model_zoo.KNOWN_MODELS if model_zoo.installed_here(known) == "yes"]
    missing = [known.name for known in model_zoo.KNOWN_MODELS if known not in installed]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for modality in ("text", "image"):
            bodies = [known for known in installed if known.modality == modality]
            if bodies:
                inputs = sample_inputs(modality, args.items, Path(scratch))
                rows += time_bodies(bodies, modality, inputs, preprocess, args, Path(scratch))
    record = {
        "command": " ".join(["benchmarks/body_speed.py", *sys.argv[1:]]),
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)",
        "load_average_before": os.getloadavg()[0],  # other jobs slow every body alike; the ratios stand
        "items": args.items,
        "batch_size": args.batch_size,
        "not_installed": missing,
        "bodies": rows,
    }
    table = markdown(record)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table + "\n")
    speeds = {row["name"]: {k: row[k] for k in ("items_per_second", "times_the_default")} for row in rows}
    measured = {k: record[k] for k in ("command", "date", "machine", "batch_size")}
    PACKAGE_SPEEDS.write_text(json.dumps({"measured": measured, "bodies": speeds}, indent=2) + "\n")
    return 0


def sample_inputs(modality: str, count: int, scratch: Path) -> list[str]:
    """Texts of about 300 words (past 128 tokens), or 256 px PNG files of noise."""
    if modality == "text":
        words = "the support team answered the ticket about the invoice and the delivery of the parcel".split()
        return [" ".join(words[(i + j) % len(words)] for j in range(300)) + f" {i}" for i in range(count)]
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = scratch / f"image-{index}.png"
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def time_bodies(
    bodies: list[model_zoo.KnownModel],
    modality_name: str,
    inputs: list[str],
    preprocess: PreprocessConfig,
    args: argparse.Namespace,
    scratch: Path,
) -> list[dict]:
    """Each body's median items per second, the bodies taking turns."""
    modality = get_modality(modality_name)
    loaded = {}
    for known in bodies:
        snapshot = scratch / known.name
        fetch_snapshot(known.source, snapshot)
        model = modality.load_pretrained(snapshot, 2, 0.0, trust_remote_code=False, pretrained=True)
        encode = modality.preprocessor(snapshot, preprocess, False)
        encode_features(model, encode, inputs[: args.batch_size], args.batch_size, torch.device("cpu"))  # warm-up
        loaded[known.name] = (model, encode)
    seconds: dict[str, list[float]] = {name: [] for name in loaded}
    for _ in range(args.repeats):
        for name, (model, encode) in loaded.items():
            started = time.perf_counter()
            encode_features(model, encode, inputs, args.batch_size, torch.device("cpu"))
            seconds[name].append(time.perf_counter() - started)
    speed = {name: len(inputs) / statistics.median(times) for name, times in seconds.items()}
    default = speed.get(DEFAULT_BODY[modality_name])
    return [
        {
            "name": known.name,
            "modality": modality_name,
            "source": known.source,
            "parameters": known.parameters,
            "items_per_second": speed[known.name],
            "times_the_default": default / speed[known.name] if default else None,
            "seconds": seconds[known.name],
        }
        for known in bodies
    ]


def markdown(record: dict) -> str:
    lines = [
        "# Frozen encoding speed of the model zoo's bodies",
        "",
        f"`{record['command']}` on {record['machine']}, {record['date']} (1-minute load average "
        f"{record['load_average_before']:.1f} before it started): {record['items']} items per timing, "
        f"batch {record['batch_size']}, median of the timings; texts truncated at 128 tokens, images decoded from "
        "256 px PNGs.",
        "",
        "| body | modality | parameters | items per second | time per item against the modality's default |",
        "|---|---|---|---|---|",
    ]
    for row in record["bodies"]:
        ratio = f"{row['times_the_default']:.2f}×" if row["times_the_default"] else "-"
        lines.append(
            f"| {row['name']} | {row['modality']} | {row['parameters'] / 1e6:.1f}M | "
            f"{row['items_per_second']:.1f} | {ratio} |"
        )
    if record["not_installed"]:
        lines += ["", f"Not installed here, so not measured: {', '.join(record['not_installed'])}."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
