"""The image modality end to end: folders of PNG/JPEG in, a bundle that Pillow + numpy + onnxruntime serve out.

A tiny timm model (``test_efficientnet``, random weights) saved as safetensors stands in for the
pretrained backbone; it goes through the same source resolution, training, export and parity
gate as EfficientNet-Lite0 does in the demo.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from factories import ARCHITECTURE, COLOURS, write_images
from PIL import Image

from tlpipe import serving
from tlpipe.cli import run_stage
from tlpipe.config import TrainConfig
from tlpipe.errors import ConfigError, ModelSourceError
from tlpipe.feature_cache import FeatureCache
from tlpipe.modalities import get_modality
from tlpipe.modalities.image.modality import ImageModality
from tlpipe.modalities.image.model import ImagePreprocessor
from tlpipe.modalities.image.settings import AugmentConfig
from tlpipe.params import parse_params
from tlpipe.sources import fetch_snapshot
from tlpipe.stages import STAGES
from tlpipe.training import Callbacks, fine_tune, seed_everything


def serve_from_bundle(bundle: Path, paths: list[str], model_file: str | None = None) -> np.ndarray:
    """Probabilities from the bundle's own predictor (onnxruntime, numpy and Pillow), as a server would compute them."""
    predictor = serving.Predictor(bundle, model_file)
    return np.array([list(p["probabilities"].values()) for p in predictor.predict(paths)])


def test_image_folders_become_a_bundle_that_pillow_numpy_and_onnxruntime_serve_alone(image_project: Path) -> None:
    for stage in STAGES:
        run_stage(stage)

    bundle = image_project / "models" / "bundle"
    assert {p.name for p in bundle.iterdir()} >= {
        "README.md", "labels.json", "manifest.json", "metadata.json", "model.onnx", "parity.json", "predict.py",
        "preprocessing.json", "requirements.txt",
    }  # fmt: skip
    parity = json.loads((image_project / "reports" / "parity.json").read_text())
    assert parity["quantize"] == "static" and parity["int8"]["form"] == "static"  # auto: static int8 for images
    assert (bundle / "model.int8.onnx").exists() == parity["int8"]["kept"]
    metadata = json.loads((bundle / "metadata.json").read_text())
    assert metadata["task"] == "image-classification"
    assert metadata["inputs"] == {"pixel_values": ["batch", 3, 160, 160]}
    predictions = pd.read_csv(image_project / "reports" / "evaluation" / "predictions.csv")
    labels = json.loads((bundle / "labels.json").read_text())

    served = serve_from_bundle(bundle, predictions["path"].tolist())

    assert [labels[i] for i in served.argmax(axis=1)] == predictions["finetuned"].tolist()
    if parity["int8"]["kept"]:  # the static model serves through the same predictor, as the gate measured it
        int8 = serve_from_bundle(bundle, predictions["path"].tolist(), "model.int8.onnx")
        assert (int8.argmax(axis=1) == served.argmax(axis=1)).mean() == pytest.approx(parity["int8"]["top1_agreement"])
    assert (bundle / "requirements.txt").read_text().split()[-1].startswith("pillow==")
    from tlpipe.checkpoint import load_checkpoint
    from tlpipe.training import predict_logits

    model, preprocess, _, _ = load_checkpoint(image_project / "models" / "checkpoint")
    temperature = json.loads((bundle / "preprocessing.json").read_text())["calibration"]["temperature"]
    logits = predict_logits(model, preprocess, predictions["path"].tolist(), 8)
    expected = torch.softmax(logits / temperature, dim=1).numpy()  # calibrated, as evaluate measured
    assert np.abs(served - expected).max() < 1e-4
    metrics = json.loads((image_project / "reports" / "metrics.json").read_text())
    assert set(metrics) >= {"finetuned", "baseline"}
    card = (image_project / "reports" / "model_card.md").read_text()
    assert "pipeline_tag: image-classification" in card
    assert "logistic regression on downscaled pixels" in card
    manifest = pd.read_csv(image_project / "data" / "manifest" / "train.csv")
    assert len(manifest) == 30 and manifest["sha256"].str.len().eq(64).all()
    # drift checks read image folders through the same plug-in: new images from the same source pass, others do not
    write_images(image_project / "incoming", 8, 200)
    unlike = image_project / "unlike"
    unlike.mkdir()
    for index in range(24):
        checkerboard = (np.indices((48, 48)).sum(axis=0) // (2 + index % 6) % 2 * 255).astype(np.uint8)
        Image.fromarray(checkerboard).save(unlike / f"{index}.png")
    predictor = serving.Predictor(bundle)
    alike = predictor.drift(serving.read_inputs([str(image_project / "incoming")], [], None, "image"))
    moved = predictor.drift(serving.read_inputs([str(unlike)], [], None, "image"))
    assert not alike["drift"] and moved["drift"]
    assert alike["inputs"] == 24 and moved["embedding_test"]["p_value"] < 0.01


def test_a_null_threshold_is_the_image_modalitys(image_project: Path) -> None:
    threshold = ImageModality.cross_validate_below
    write_images(image_project / "data" / "raw" / "train", threshold, 200)  # with the fixture's 10: above it
    params = yaml.safe_load((image_project / "params.yaml").read_text())
    params["split"]["cross_validate_below"] = None
    (image_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("validate", "prepare"):
        run_stage(stage)

    folds = json.loads((image_project / "data" / "prepared" / "folds.json").read_text())
    assert folds["cross_validate_below"] == threshold and folds["smallest_class"] == threshold + 10
    assert folds["method"] == "holdout"  # where the text threshold would cross-validate
    assert threshold + 10 < get_modality("text").cross_validate_below


def labelled_images(folder: Path, per_class: int) -> tuple[list[str], list[int]]:
    """Image paths under ``folder`` and their class ids."""
    write_images(folder, per_class, 0)
    paths = sorted(str(p) for p in folder.rglob("*.*"))
    return paths, [sorted(COLOURS).index(Path(p).parent.name) for p in paths]


def snapshot(tmp_path: Path, weights: Path) -> Path:
    folder = tmp_path / "snapshot"
    fetch_snapshot(str(weights), folder, architecture=ARCHITECTURE)
    return folder


def test_frozen_batch_norms_keep_their_running_statistics_until_their_block_trains(
    tmp_path: Path, tiny_image_weights: Path
) -> None:
    folder = snapshot(tmp_path, tiny_image_weights)
    paths, labels = labelled_images(tmp_path / "images", 6)
    modality = get_modality("image")
    seed_everything(0)
    model = modality.load_pretrained(folder, len(COLOURS), 0.0, False, pretrained=True)
    norms = [m for m in model.body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]
    after_epoch: dict[int, list[torch.Tensor]] = {}
    train = TrainConfig(
        strategy="freeze_unfreeze", epochs=2, batch_size=6, layer_decay=0.8, learning_rate=1e-3, warmup_ratio=0.0
    )

    fine_tune(
        model,
        modality.preprocessor(folder, parse_params({}).preprocess, False),
        paths, labels, paths, labels, train,
        Callbacks(on_epoch_end=lambda r: after_epoch.__setitem__(r["epoch"], [m.running_mean.clone() for m in norms])),
    )  # fmt: skip

    assert all(torch.equal(a, b) for a, b in zip(before, after_epoch[1], strict=True))  # head phase
    assert not all(torch.equal(a, b) for a, b in zip(before, after_epoch[2], strict=True))  # everything trains


@pytest.mark.parametrize(
    ("strategy", "body_trains"),
    [("linear_probe", False), ("full", True), ("freeze_unfreeze", True), ("gradual_unfreeze", True), ("scratch", True)],
)
def test_every_image_strategy_trains_and_only_the_probe_leaves_the_body_as_it_was(
    tmp_path: Path, tiny_image_weights: Path, strategy: str, body_trains: bool
) -> None:
    folder = snapshot(tmp_path, tiny_image_weights)
    paths, labels = labelled_images(tmp_path / "images", 4)
    modality = get_modality("image")
    preprocess = parse_params({}).preprocess
    seed_everything(0)
    model = modality.load_pretrained(folder, len(COLOURS), 0.0, False, pretrained=strategy != "scratch")
    before = {name: p.detach().clone() for name, p in model.body.named_parameters()}
    train = TrainConfig(
        strategy=strategy, epochs=3, batch_size=6, learning_rate=1e-3, warmup_ratio=0.0,
        layer_decay=0.8 if strategy == "freeze_unfreeze" else 1.0,
    )  # fmt: skip

    result = fine_tune(
        model, modality.preprocessor(folder, preprocess, False), paths, labels, paths, labels, train,
        feature_cache=FeatureCache(tmp_path / "cache", "tiny", {}, modality.content_key),
        augment=modality.augmenter(folder, preprocess),
    )  # fmt: skip

    assert [record["epoch"] for record in result.history] == [1, 2, 3]
    changed = any(not torch.equal(before[name], p) for name, p in model.body.named_parameters())
    assert changed == body_trains


def test_augmentation_is_random_but_seeded(tmp_path: Path, tiny_image_weights: Path) -> None:
    folder = snapshot(tmp_path, tiny_image_weights)
    write_images(tmp_path / "images", 2, 0)
    paths = sorted(str(p) for p in (tmp_path / "images").rglob("*.*"))
    augmenter = get_modality("image").augmenter(folder, parse_params({}).preprocess)
    assert isinstance(augmenter, ImagePreprocessor)

    def batch(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return augmenter(paths)["pixel_values"]

    assert torch.equal(batch(1), batch(1))
    assert not torch.equal(batch(1), batch(2))
    evaluation = get_modality("image").preprocessor(folder, parse_params({}).preprocess, False)
    assert torch.equal(evaluation(paths)["pixel_values"], evaluation(paths)["pixel_values"])


def test_augmentation_can_be_switched_off(tmp_path: Path, tiny_image_weights: Path) -> None:
    folder = snapshot(tmp_path, tiny_image_weights)
    preprocess = parse_params({"preprocess": {"augment": {"enabled": False}}}).preprocess

    assert get_modality("image").augmenter(folder, preprocess) is None
    assert AugmentConfig().enabled


def test_feature_cache_keys_images_by_content_not_path(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 1, 0)
    original = next((tmp_path / "a" / "blue").iterdir())
    copy = tmp_path / "elsewhere.png"
    shutil.copy(original, copy)
    cache = FeatureCache(tmp_path / "cache", "snapshot", {}, get_modality("image").content_key)

    assert cache.key([str(original)]) == cache.key([str(copy)])
    copy.write_bytes(copy.read_bytes() + b"\0")
    assert cache.key([str(original)]) != cache.key([str(copy)])


def test_contrastive_is_refused_for_images_when_the_params_are_read() -> None:
    with pytest.raises(ConfigError, match="contrastive does not apply to data.modality image"):
        parse_params({"data": {"modality": "image"}, "train": {"strategy": "contrastive"}})


def test_a_text_encoder_is_refused_for_image_data(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelSourceError, match="data.modality is image"):
        get_modality("image").check_snapshot(tiny_model_dir, "path:tiny-bert")
