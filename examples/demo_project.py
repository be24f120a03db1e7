"""What the demo scripts share: a folder claimed as a demo project, files rewritten only when they change, git + DVC.

A demo script may run again on its own folder (``make demo-images`` twice): it writes only the
files whose content differs from what it would write, and keeps the project's git repository,
``.dvc`` (cache and config) and ``dvc.lock``, so DVC reruns exactly the stages whose inputs
changed, and nothing when nothing did. A marker file names the demo that made the folder; any
other non-empty folder is refused, so a mistyped path never gets demo files written into it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = ".tlpipe-demo"
# The unlabelled pool's folder is the pseudo_label stage's dependency: it must exist; its README says what goes in.
CODE_FILES = ("dvc.yaml", "requirements.lock", ".dvcignore", "data/unlabelled/README.md")


class ForeignFolderError(Exception):
    """The folder given to a demo script holds files that no run of that script wrote."""


def claim_folder(root: Path, demo: str) -> None:
    """Make ``root`` the ``demo`` project's folder: create it, or accept it if empty or made by this demo before."""
    if root.exists() and not root.is_dir():
        raise ForeignFolderError(f"{root} is a file, not a folder: name a folder for the {demo} demo project.")
    marker = root / MARKER
    if marker.is_file():
        made_by = marker.read_text(encoding="utf-8").strip()
        if made_by != demo:
            raise ForeignFolderError(
                f"{root} is the {made_by} demo's project, not the {demo} demo's: name another folder for it."
            )
    elif root.is_dir() and any(root.iterdir()):
        raise ForeignFolderError(
            f"{root} is not empty and is not a {demo} demo project (it has no {MARKER}), so the demo will not write "
            f"into it. Name another folder, or remove this one (rm -rf {root}) if it holds nothing you need. A {demo} "
            f"demo project made before the demos marked theirs is kept with `echo {demo} > {root / MARKER}`."
        )
    write_if_changed(marker, f"{demo}\n".encode())


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly that; True if it wrote."""
    if path.is_file() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def copy_code(root: Path) -> None:
    """This repository's ``dvc.yaml``, ``requirements.lock``, ``.dvcignore``, ``data/unlabelled/README.md`` and
    ``src/`` into ``root``.

    They are the stages' dependencies; files removed here are removed there.
    """
    for name in CODE_FILES:
        write_if_changed(root / name, (REPO / name).read_bytes())
    source, target = REPO / "src", root / "src"
    wanted = {path.relative_to(source): path for path in _code_files(source)}
    for relative, path in wanted.items():
        write_if_changed(target / relative, path.read_bytes())
    for path in _code_files(target):
        if path.relative_to(target) not in wanted:
            path.unlink()


def _code_files(folder: Path) -> list[Path]:
    """Files under ``folder``, less byte-code caches and build metadata."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part == "__pycache__" or part.endswith(".egg-info") for part in path.relative_to(folder).parts)
    ]


def commit_project(root: Path, message: str) -> None:
    """Make ``root`` a git + DVC repository that ignores what this one does, and make its first commit.

    A repository that is already there is kept as it is, with its history, DVC cache and config.
    """
    write_if_changed(root / ".gitignore", (REPO / ".gitignore").read_bytes())  # the same outputs and lock files
    dvc = str(Path(sys.executable).with_name("dvc"))  # this environment's DVC, as the stages' `tlpipe` is
    if not (root / ".git").is_dir():
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    if not (root / ".dvc").is_dir():
        subprocess.run([dvc, "init", "-q"], cwd=root, check=True)
        subprocess.run([dvc, "config", "core.analytics", "false"], cwd=root, check=True)
    has_commit = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True)
    if has_commit.returncode != 0:
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        subprocess.run(
            ["git", "-c", "user.name=tlpipe", "-c", "user.email=demo@tlpipe", "commit", "-qm", message],
            cwd=root,
            check=True,
        )
