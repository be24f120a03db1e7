"""What a training step costs against a frozen forward pass, per example: the ratio ``tlpipe.run_estimate`` prices
training at (``TRAINING_STEP_COST``).

Each installed zoo body of the modality is loaded by tlpipe's own code path and timed on one batch of inputs, the
two kinds of pass taking turns (median of --repeats after one untimed pass of each): a frozen forward pass as the
estimate times it (preprocessing and ``Classifier.embedding`` under ``torch.no_grad``), and a training step
(preprocessing, forward through the head, cross-entropy, backward, an AdamW step). The ratio, not the seconds, is
the figure to read on a shared machine.

    .venv/bin/python benchmarks/step_cost.py                # the text bodies installed; about a minute for MiniLM
    .venv/bin/python benchmarks/step_cost.py --modality image
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from body_speed import sample_inputs

from tlpipe import model_zoo
from tlpipe.config import PreprocessConfig
from tlpipe.modalities import get_modality
from tlpipe.sources import fetch_snapshot

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modality", choices=("text", "image"), default="text")
    parser.add_argument("--batch-size", type=int, default=16, help="inputs per pass (default 16, as the estimate)")
    parser.add_argument("--repeats", type=int, default=5, help="timings of each pass; the median is kept")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "step_cost.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    preprocess = PreprocessConfig.model_validate(yaml.safe_load((REPO / "params.yaml").read_text())["preprocess"])
    bodies = [known for known in model_zoo.KNOWN_MODELS
              if known.modality == args.modality and model_zoo.installed_here(known) == "yes"]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        inputs = sample_inputs(args.modality, args.batch_size, Path(scratch))
        for known in bodies:
            rows.append({"name": known.name, **time_passes(known, args.modality, inputs, preprocess, args.repeats,
                                                            Path(scratch))})  # fmt: skip
            print(f"{known.name}: forward {rows[-1]['forward_per_example'] * 1000:.1f} ms, training step "
                  f"{rows[-1]['step_per_example'] * 1000:.1f} ms an example: {rows[-1]['ratio']:.2f}x")  # fmt: skip
    record = {"command": " ".join(["benchmarks/step_cost.py", *sys.argv[1:]]), "batch_size": args.batch_size,
              "threads": torch.get_num_threads(), "bodies": rows}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


def time_passes(
    known: model_zoo.KnownModel, modality_name: str, inputs: list[str], preprocess: PreprocessConfig, repeats: int,
    scratch: Path,
) -> dict[str, float]:  # fmt: skip
    """The median seconds per example of a frozen forward pass and of a training step, and their ratio."""
    modality = get_modality(modality_name)
    snapshot = scratch / known.name
    fetch_snapshot(known.source, snapshot)
    model = modality.load_pretrained(snapshot, 4, 0.1, trust_remote_code=False, pretrained=True)
    encode = modality.preprocessor(snapshot, preprocess, False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    targets = torch.zeros(len(inputs), dtype=torch.long)

    def forward() -> None:
        model.eval()
        with torch.no_grad():
            model.embedding(**encode(inputs))

    def step() -> None:
        model.train()
        loss = torch.nn.functional.cross_entropy(model(**encode(inputs)), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    timings: dict[str, list[float]] = {"forward": [], "step": []}
    for repeat in range(repeats + 1):
        for name, run in (("forward", forward), ("step", step)):
            started = time.perf_counter()
            run()
            if repeat:  # the first of each pays for one-off set-up
                timings[name].append((time.perf_counter() - started) / len(inputs))
    forward_seconds, step_seconds = (statistics.median(timings[name]) for name in ("forward", "step"))
    return {"forward_per_example": forward_seconds, "step_per_example": step_seconds,
            "ratio": step_seconds / forward_seconds}  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
