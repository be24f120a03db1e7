"""Running git and the real dvc command line in a temporary project."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real dvc command line in ``root``; output is returned as text."""
    result = subprocess.run(["dvc", *args], cwd=root, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def stages_run(output: str) -> list[str]:
    """Names of the stages a `dvc repro` output says it ran."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


def order_broken(root: Path, ran: list[str]) -> list[str]:
    """The edges of ``root``'s stage graph (a stage reads another's output) that ``ran`` ran out of order. DVC may
    run unconnected stages in any order (it did: pretrain before validate), so tests check only these edges."""
    import re

    import yaml

    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    paths = yaml.safe_load((root / "params.yaml").read_text())["paths"]

    def resolved(entry: object) -> str:
        name = entry if isinstance(entry, str) else next(iter(entry))  # type: ignore[arg-type]
        return re.sub(r"\$\{paths\.(\w+)\}", lambda match: str(paths[match.group(1)]), name)

    made_by = {
        resolved(out): stage
        for stage, spec in stages.items()
        for out in (*spec.get("outs", []), *spec.get("metrics", []), *spec.get("plots", []))
    }
    edges = {(made_by[resolved(dep)], stage) for stage, spec in stages.items() for dep in spec["deps"]
             if resolved(dep) in made_by}  # fmt: skip
    return sorted(f"{before} -> {after}" for before, after in edges
                  if before in ran and after in ran and ran.index(before) > ran.index(after))  # fmt: skip
