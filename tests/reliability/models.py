"""Model sources a user may be handed: copies of the tiny model made broken, pickled or asking to run code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

MARKER = "unpickled-or-imported.txt"  # written only if a pickle is loaded or a model's own code is imported


class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def source_copy(root: Path, name: str) -> Path:
    """A copy of the project's tiny model folder under ``sources/``, made the project's model.source."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    folder = Path(shutil.copytree(params["model"]["source"], root / "sources" / name))
    params["model"]["source"] = str(folder)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def corrupted_safetensors(root: Path) -> None:
    weights = source_copy(root, "corrupted") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def pickle_only(root: Path) -> None:
    import torch

    folder = source_copy(root, "pickled")
    (folder / "model.safetensors").unlink()
    torch.save({"payload": _Payload(root / MARKER)}, folder / "pytorch_model.bin")


def pickled_image_weights(root: Path) -> None:
    import torch

    path = root / "sources" / "weights.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"payload": _Payload(root / MARKER)}, path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"].update(source=str(path), architecture="timm:test_efficientnet")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def remote_code(root: Path, trust: bool = False) -> None:
    folder = source_copy(root, "remote-code")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_custom.py").write_text(f"open({str(root / MARKER)!r}, 'w').close()\n")
    if trust:
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["model"]["trust_remote_code"] = True
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def nothing_was_unpickled_or_imported(root: Path) -> None:
    assert not (root / MARKER).exists(), "a model file's code ran"


def change_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
