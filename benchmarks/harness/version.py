"""What identifies the code a cell ran: the committed content of the code it measures, plus any uncommitted
change to it."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

# params.yaml is what a study's "default" setting means, so an uncommitted edit to it must invalidate too.
CODE_PATHS = ("src", "params.yaml")
# What frozen features depend on: fetching and loading a body, preprocessing, encoding (feature_paths).
FEATURE_ROOTS = ("tlpipe.sources", "tlpipe.feature_cache", "tlpipe.config")


def code_version(repo: Path, paths: Sequence[str] = CODE_PATHS) -> str:
    """The git object ids of ``paths`` at HEAD plus a hash of their uncommitted changes; a hash of the files when
    git cannot answer (no git, or not a repository).

    Object ids, not the commit: a commit that changes only docs, tests or benchmarks keeps every cached cell,
    which matters to a suite of hours resumed across sessions.
    """
    try:
        committed = _git(repo, "ls-tree", "HEAD", "--", *paths)
        head = hashlib.sha256(committed.encode()).hexdigest()[:16]
        changes = _git(repo, "diff", "HEAD", "--", *paths)
        # git diff leaves out new files git does not track yet; a new module under src/ is a change too.
        untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "--", *paths).split()
    except (OSError, subprocess.CalledProcessError):
        return "files:" + files_hash(repo, paths)
    digest = hashlib.sha256(changes.encode())
    for name in sorted(untracked):
        digest.update(name.encode() + b"\0" + (repo / name).read_bytes())
    return f"{head}+{digest.hexdigest()[:16]}"


def files_hash(repo: Path, paths: Sequence[str]) -> str:
    """sha256 over the names and contents of every file under ``paths`` (caches and bytecode left out)."""
    digest = hashlib.sha256()
    for top in paths:
        root = repo / top
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def feature_paths(repo: Path) -> tuple[str, ...]:
    """The files of ``FEATURE_ROOTS`` and every modality's plug-in, and of all they import, transitively (grimp's
    import graph, packages' ``__init__`` included), relative to ``repo``: what a cached feature's key must cover,
    and nothing else, so that the features survive changes to training, stages and reports."""
    import grimp

    from tlpipe.modalities import MODALITIES

    graph = grimp.build_graph("tlpipe", cache_dir=None)
    roots = (*FEATURE_ROOTS, *(f"{package}.modality" for package in MODALITIES.values()))
    modules = set(roots).union(*(graph.find_upstream_modules(root) for root in roots))
    modules |= {name.rsplit(".", depth)[0] for name in modules for depth in range(1, name.count(".") + 1)}
    files = []
    for name in sorted(modules):
        base = repo / "src" / Path(*name.split("."))
        files.append(base / "__init__.py" if base.is_dir() else base.with_suffix(".py"))
    return tuple(str(path.relative_to(repo)) for path in files)
