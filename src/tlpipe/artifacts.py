"""Writing and reading stage artifacts safely.

Every output is written to a temporary sibling first and moved into place with one rename, so
an interrupted or failed stage never leaves a half-written file and never destroys the previous
good output before the new one is complete. Temporary siblings are named
``.<target>.<role>.<pid>.<random>`` (role ``tmp`` for files, ``staging`` or ``previous`` for
folders), so the next writer of the same target can clear what a killed writer left.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tlpipe.errors import ArtifactError


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path``, atomically."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, atomically."""
    with atomic_file(path) as staging:
        staging.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a unique temporary sibling of ``path`` to write; it becomes ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    # The real suffix last, for writers that pick the format from it (a PNG figure, a safetensors file).
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=_sibling_prefix(path, "tmp"), suffix=path.suffix)
    os.close(fd)
    staging = Path(name)
    try:
        yield staging
        os.chmod(staging, 0o666 & ~_umask())  # mkstemp creates 0600; artifacts are shared like any file
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def read_json(path: Path, produced_by: str) -> Any:
    """Read a JSON artifact, naming the stage that should have produced it when it is missing."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing. Run `tlpipe {produced_by}` (or `dvc repro`) first.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc}); rerun `tlpipe {produced_by}`.") from None


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=_sibling_prefix(target, "staging")))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp creates 0700
    try:
        yield staging
        replace_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_directory(source: Path, target: Path) -> None:
    """Move ``source`` onto ``target``, keeping the old ``target`` until the move has happened."""
    previous = Path(tempfile.mkdtemp(dir=target.parent, prefix=_sibling_prefix(target, "previous")))
    if target.exists():
        os.replace(target, previous)  # onto the empty folder mkdtemp made
    try:
        os.replace(source, target)
    except BaseException:
        if not target.exists():
            os.replace(previous, target)
        raise
    finally:
        shutil.rmtree(previous, ignore_errors=True)


def recover(target: Path) -> None:
    """Clear what killed writers of ``target`` (a file or folder) left beside it; undo a swap one died in."""
    prefix = f".{target.name}."
    for sibling in sorted(target.parent.glob(f"{glob.escape(prefix)}*")):
        role, pid, *_ = sibling.name.removeprefix(prefix).split(".", 2) + [""]
        if role not in ("tmp", "staging", "previous") or not pid.isdigit() or _alive(int(pid)):
            continue
        if role == "previous" and not target.exists() and any(sibling.iterdir()):
            os.replace(sibling, target)
        elif sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)


def _sibling_prefix(target: Path, role: str) -> str:
    # The writer's pid in the name tells a later run whether the writer is still alive.
    return f".{target.name}.{role}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_files(paths: list[Path]) -> str:
    """One sha256 over several files' names and contents, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
