"""Image backbones from timm and torchvision, and the snapshot folder their pretrained weights live in.

An image snapshot is ``model.safetensors`` plus ``config.json``. The weights are the full
pretrained model's state dict in the library's own key names, ImageNet classifier included, so
the snapshot can be checked against ImageNet before anything is trained on it. ``config.json``
says how to rebuild and feed the model::

    {"tlpipe_image_model": 1, "architecture": "timm:tf_efficientnet_lite0", "num_features": 1280,
     "classifier": "classifier", "num_classes": 1000,
     "preprocessing": {"input_size": 224, "resize": 256, "interpolation": "bicubic",
                       "mean": [...], "std": [...]},
     "provenance": {...}}

``preprocessing`` comes from the weights' own configuration: resize the shorter side to
``resize``, centre-crop ``input_size``, scale to [0, 1], normalise with ``mean`` and ``std``.

The body is the model without its classifier: ``forward(images)`` returns pooled features of
shape ``(batch, num_features)``. ``body_blocks`` splits it bottom to top the way timm groups
layers for layer-wise learning rates (``group_matcher``); torchvision models, which have no
such grouping, are split at their stages.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from tlpipe.artifacts import read_json, write_json
from tlpipe.errors import ModelSourceError

if TYPE_CHECKING:
    from torch import Tensor

log = logging.getLogger(__name__)

IMAGE_MODEL_FORMAT = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ARCHITECTURE_FORMS = (
    "'timm:<model name>' (e.g. timm:tf_efficientnet_lite0) or 'torchvision:<builder>' (e.g. torchvision:resnet18)"
)
# Containers in which torchvision classification models keep their stages, split into one block per stage.
TORCHVISION_TRUNKS = ("features", "trunk_output", "blocks", "layers", "encoder.layers")


def create_backbone(architecture: str, num_classes: int | None = None) -> nn.Module:
    """Build ``architecture`` ('timm:<name>' or 'torchvision:<builder>') with random weights and the library's head."""
    library, name = parse_architecture(architecture)
    overrides = {} if num_classes is None else {"num_classes": num_classes}
    if library == "timm":
        import timm

        return timm.create_model(name, pretrained=False, **overrides)
    import torchvision

    return torchvision.models.get_model(name, weights=None, **overrides)


def load_body(snapshot: Path, pretrained: bool = True) -> tuple[nn.Module, int]:
    """The snapshot's model without its classifier, and its feature size; ``forward`` gives (batch, num_features)."""
    config = read_config(snapshot)
    architecture = config["architecture"]
    library, _ = parse_architecture(architecture)
    classifiers = _as_names(config["classifier"])
    if library == "timm":
        body = create_backbone(architecture, num_classes=0)
    else:
        body = create_backbone(architecture, num_classes=config["num_classes"])
        for name in classifiers:
            body.set_submodule(name, nn.Identity())
    if pretrained:
        from safetensors.torch import load_file

        state = load_file(snapshot / WEIGHTS_FILE)
        body_state = {key: value for key, value in state.items() if not _belongs_to(key, classifiers)}
        _require_loadable(body, body_state, f"{snapshot} (body of {architecture})")
        body.load_state_dict(body_state, strict=True)
    return body, int(config["num_features"])


def body_blocks(body: nn.Module, architecture: str) -> list[nn.Module]:
    """The body split bottom (stem) to top into blocks; every body parameter is in exactly one block.

    timm models are split by their own ``group_matcher(coarse=False)``, the grouping timm uses for
    layer-wise learning-rate decay. torchvision models are split into their top-level children,
    with the stage containers in ``TORCHVISION_TRUNKS`` opened into one block per stage; a single
    layer joins the block below it (resnet's conv1 and bn1 make the stem, a final norm joins the
    top block). Parameters held by the body itself (a ViT's class token) join the stem.
    """
    library, _ = parse_architecture(architecture)
    if library == "timm" and hasattr(body, "group_matcher"):
        from timm.models import group_modules

        groups = group_modules(body, body.group_matcher(coarse=False))
        blocks = [[body.get_submodule(name) for name in names] for _, names in sorted(groups.items())]
    else:
        blocks = _stage_blocks(body)
    own = list(body.parameters(recurse=False))
    if own:
        blocks[0].append(nn.ParameterList(own))
    return [nn.ModuleList(modules) for modules in blocks]


def write_snapshot(
    folder: Path,
    architecture: str,
    state_dict: Mapping[str, Tensor],
    preprocessing: dict[str, Any],
    provenance: dict[str, Any],
) -> None:
    """Write ``model.safetensors`` and ``config.json`` after checking the state dict loads into the architecture."""
    from safetensors.torch import save_file

    model = create_backbone(architecture)
    classifier = _classifier_name(model, architecture)
    head = model.get_submodule(_as_names(classifier)[0])
    weight = state_dict.get(f"{_as_names(classifier)[0]}.weight")
    num_classes = int(weight.shape[0]) if weight is not None else 0
    if num_classes != head.weight.shape[0]:
        model = create_backbone(architecture, num_classes=num_classes)
    _require_loadable(model, state_dict, f"weights for {architecture}")
    model.load_state_dict(state_dict, strict=True)
    config = {
        "tlpipe_image_model": IMAGE_MODEL_FORMAT,
        "architecture": architecture,
        "num_features": _num_features(model, architecture, head),
        "classifier": classifier,
        "num_classes": num_classes,
        "preprocessing": preprocessing,
        "provenance": provenance,
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state_dict.items()}, folder / WEIGHTS_FILE, {"format": "pt"})
    write_json(folder / CONFIG_FILE, config)


def write_body_snapshot(folder: Path, body: nn.Module, config: Mapping[str, Any]) -> None:
    """Write a trained ``body`` (its classifier removed) as a snapshot of ``config``'s architecture with no classes."""
    architecture = config["architecture"]
    classifiers = _as_names(config["classifier"])
    # A headless snapshot has num_classes 0: timm drops the classifier, torchvision keeps an empty one.
    empty_head = {
        key: value
        for key, value in create_backbone(architecture, num_classes=0).state_dict().items()
        if _belongs_to(key, classifiers)
    }
    provenance = {**config.get("provenance", {}), "head": "removed after own-domain pretraining"}
    write_snapshot(folder, architecture, {**body.state_dict(), **empty_head}, config["preprocessing"], provenance)


def state_dict_by_position(source: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``source``'s tensors under ``target``'s key names, paired in order; refused unless counts and shapes match."""
    if len(source) != len(target):
        raise ModelSourceError(
            f"cannot pair state dicts by position: the weights hold {len(source)} tensors, the architecture "
            f"expects {len(target)}. Check model.architecture."
        )
    paired = {}
    for index, ((source_key, tensor), (target_key, expected)) in enumerate(
        zip(source.items(), target.items(), strict=True)
    ):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ModelSourceError(
                f"cannot pair state dicts by position: tensor {index} '{source_key}' has shape {tuple(tensor.shape)} "
                f"but the architecture's '{target_key}' has {tuple(expected.shape)}. Check model.architecture."
            )
        paired[target_key] = tensor
    return paired


def read_preprocessing(folder: Path) -> dict[str, Any]:
    """The resize, crop and normalisation the snapshot's weights expect."""
    return read_config(folder)["preprocessing"]


def is_image_snapshot(folder: Path) -> bool:
    """Whether ``folder`` holds a tlpipe image snapshot (a ``config.json`` with ``tlpipe_image_model``)."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return False
    config = read_json(path, "fetch-model")
    return isinstance(config, dict) and "tlpipe_image_model" in config


def read_config(folder: Path) -> dict[str, Any]:
    """The snapshot's ``config.json``, refused when it is not an image snapshot of a known format."""
    config = read_json(folder / CONFIG_FILE, "fetch-model")
    version = config.get("tlpipe_image_model") if isinstance(config, dict) else None
    if version != IMAGE_MODEL_FORMAT:
        raise ModelSourceError(
            f"{folder / CONFIG_FILE}: not a tlpipe image snapshot (tlpipe_image_model={version!r}, expected "
            f"{IMAGE_MODEL_FORMAT}). Set model.source to image weights and run `tlpipe fetch-model`."
        )
    return config


def timm_preprocessing(data_config: Mapping[str, Any]) -> dict[str, Any]:
    """Snapshot preprocessing from timm's ``resolve_data_config`` (resize = input_size / crop_pct, rounded down)."""
    _, height, width = data_config["input_size"]
    if height != width:
        raise ModelSourceError(f"timm input_size {data_config['input_size']}: only square inputs are supported")
    if data_config.get("crop_mode", "center") != "center":
        log.warning("timm crop_mode %r approximated by a centre crop", data_config["crop_mode"])
    resize = math.floor(height / data_config["crop_pct"])
    return _preprocessing(height, resize, data_config["interpolation"], data_config["mean"], data_config["std"])


def torchvision_preprocessing(weights: Any) -> dict[str, Any]:
    """Snapshot preprocessing from torchvision weights' ``transforms()`` (resize_size, crop_size, mean, std)."""
    transforms = weights.transforms()
    if not hasattr(transforms, "crop_size"):
        raise ModelSourceError(f"{weights}: not image-classification weights (their transforms have no crop_size)")
    crop, resize = transforms.crop_size[0], transforms.resize_size[0]
    return _preprocessing(crop, resize, transforms.interpolation.value, transforms.mean, transforms.std)


def default_preprocessing(architecture: str) -> dict[str, Any]:
    """The preprocessing of the architecture's default pretrained weights, read from metadata (no download)."""
    library, name = parse_architecture(architecture)
    if library == "timm":
        import timm

        pretrained_cfg = timm.models.get_pretrained_cfg(name)
        return timm_preprocessing(timm.data.resolve_data_config({}, pretrained_cfg=pretrained_cfg.to_dict()))
    import torchvision

    weights = torchvision.models.get_model_weights(name)
    return torchvision_preprocessing(weights["DEFAULT"])


def torchvision_weights(builder: str, weights_name: str) -> Any:
    """The torchvision weights enum member ``weights_name`` of ``builder`` (e.g. resnet18, IMAGENET1K_V1)."""
    import torchvision

    parse_architecture(f"torchvision:{builder}")
    members = torchvision.models.get_model_weights(builder).__members__
    if weights_name not in members:
        raise ModelSourceError(f"torchvision {builder} has no weights '{weights_name}'; valid: {', '.join(members)}.")
    return members[weights_name]


def parse_architecture(architecture: str) -> tuple[str, str]:
    """``(library, model name)`` of 'timm:<name>' or 'torchvision:<builder>', refused when either is unknown."""
    library, _, name = architecture.partition(":")
    if library == "timm" and name:
        import timm

        if not timm.is_model(name):
            raise ModelSourceError(
                f"model.architecture '{architecture}': timm has no such model{_close(name, timm.list_models())}. "
                f"Give {ARCHITECTURE_FORMS}."
            )
        return library, name
    if library == "torchvision" and name:
        import torchvision

        builders = torchvision.models.list_models(module=torchvision.models)
        if name not in builders:
            raise ModelSourceError(
                f"model.architecture '{architecture}': not a torchvision classification model{_close(name, builders)}. "
                f"Give {ARCHITECTURE_FORMS}."
            )
        return library, name
    raise ModelSourceError(f"model.architecture '{architecture}': give {ARCHITECTURE_FORMS}.")


def _close(name: str, known: list[str]) -> str:
    matches = difflib.get_close_matches(name, known, n=3)
    return f" (did you mean {', '.join(matches)}?)" if matches else ""


def _classifier_name(model: nn.Module, architecture: str) -> str | list[str]:
    library, _ = parse_architecture(architecture)
    classifier = model.pretrained_cfg.get("classifier") if library == "timm" else None
    if classifier:
        return classifier if isinstance(classifier, str) else list(classifier)
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ModelSourceError(f"{architecture}: no linear classifier found; use a model with a linear head")
    return linears[-1]


def _as_names(classifier: str | list[str]) -> list[str]:
    return [classifier] if isinstance(classifier, str) else list(classifier)


def _belongs_to(key: str, modules: list[str]) -> bool:
    return any(key.startswith(f"{module}.") for module in modules)


def _num_features(model: nn.Module, architecture: str, head: nn.Module) -> int:
    if architecture.startswith("timm:"):
        # What forward returns with num_classes=0: after any pre-logits layer, so not always num_features.
        return int(getattr(model, "head_hidden_size", None) or model.num_features)
    return int(head.in_features)


def _require_loadable(model: nn.Module, state_dict: Mapping[str, Tensor], what: str) -> None:
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    resized = [
        f"{key} {tuple(state_dict[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(value.shape)
    ]
    problems = [
        f"{label} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape differs", resized))
        if keys
    ]
    if problems:
        raise ModelSourceError(f"{what} do not match the architecture: {'; '.join(problems)}; check model.architecture")


def _preprocessing(input_size: int, resize: int, interpolation: str, mean: Any, std: Any) -> dict[str, Any]:
    return {
        "input_size": int(input_size),
        "resize": int(resize),
        "interpolation": str(interpolation).lower(),
        "mean": [float(value) for value in mean],
        "std": [float(value) for value in std],
    }


def _stage_blocks(body: nn.Module) -> list[list[nn.Module]]:
    blocks: list[list[nn.Module]] = []
    for module in _units(body, ""):
        # A single layer joins the block below it: resnet's conv1 and bn1 make one stem, a final norm the top block.
        if blocks and not any(True for _ in module.children()):
            blocks[-1].append(module)
        else:
            blocks.append([module])
    return blocks


def _units(module: nn.Module, prefix: str) -> list[nn.Module]:
    units: list[nn.Module] = []
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if not any(True for _ in child.parameters()):
            continue
        if path in TORCHVISION_TRUNKS:
            units += [stage for stage in child.children() if any(True for _ in stage.parameters())]
        elif any(trunk.startswith(f"{path}.") for trunk in TORCHVISION_TRUNKS):
            own = list(child.parameters(recurse=False))
            units += ([nn.ParameterList(own)] if own else []) + _units(child, f"{path}.")
        else:
            units.append(child)
    return units
