"""Kill fetch-model, train and export at random moments: the killed run never leaves a half-written output that
passes for complete, and a rerun ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from built_once import built_once
from factories import make_table, write_project

from tlpipe.cli import run_stage

from .harness import outputs_of

pytestmark = pytest.mark.slow
SEEDS = (0, 1)  # two kill points per stage: each costs a stage's run and rerun (about 20 s on two cores)
OUTPUT = {"fetch-model": "data/pretrained", "train": "models/checkpoint", "export": "models/bundle"}


def outcome(root: Path, stage: str) -> dict[str, str] | None:
    """What a complete run of ``stage`` leaves, file by file (no file holds a wall-clock time); None if absent."""
    folder = root / OUTPUT[stage]
    return outputs_of(folder) if folder.exists() else None


def differing(one: dict[str, str] | None, other: dict[str, str] | None) -> list[str]:
    one, other = one or {}, other or {}
    return sorted(name for name in one.keys() | other.keys() if one.get(name) != other.get(name))


def leftovers(root: Path, stage: str) -> list[str]:
    """Staging or swap folders of the stage's output that a finished run should have cleared."""
    target = root / OUTPUT[stage]
    return sorted(p.name for p in target.parent.glob(f".{target.name}.*"))


def parity_pair(root: Path) -> tuple[dict | None, dict | None]:
    """reports/parity.json without its quantisation part, and the bundle's own parity.json; None where absent."""
    report, bundled = root / "reports" / "parity.json", root / OUTPUT["export"] / "parity.json"
    quantisation = ("int8", "quantize")
    return (
        {k: v for k, v in json.loads(report.read_text()).items() if k not in quantisation} if report.exists() else None,
        json.loads(bundled.read_text()) if bundled.exists() else None,
    )


def tlpipe(root: Path, stage: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tlpipe", stage], cwd=root, capture_output=True, text=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, object]:
    """A finished project, each stage's uninterrupted outcome, and how long each stage's command takes; built once
    for the run and read by every worker."""

    def build(root: Path) -> None:
        built = finished_project(root, tiny_model_dir)
        (root / "reference.json").write_text(json.dumps({key: built[key] for key in ("seconds", "outcomes")}))

    root = built_once(tmp_path_factory, "crash-reference", build)
    return {**json.loads((root / "reference.json").read_text()), "root": root}


def finished_project(root: Path, tiny_model_dir: Path) -> dict[str, object]:
    write_project(root, tiny_model_dir, make_table(12), make_table(4, offset=100), {"train": {"epochs": 6}})
    seconds, outcomes = {}, {}
    # The killed stages run as the commands the tests kill, timed; the others in this process, which is quicker.
    for stage in ("validate", "prepare", "fetch-model", "train", "calibrate", "evaluate", "export"):
        if stage not in OUTPUT:
            with contextlib.chdir(root):
                run_stage(stage)
            continue
        started = time.monotonic()
        done = tlpipe(root, stage)
        assert done.returncode == 0, done.stderr[-3000:]
        seconds[stage] = time.monotonic() - started
        outcomes[stage] = outcome(root, stage)
    return {"root": root, "seconds": seconds, "outcomes": outcomes}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stage", list(OUTPUT))
def test_a_stage_killed_at_a_random_moment_leaves_no_half_output_and_reruns_to_the_same_result(
    reference: dict, stage: str, seed: int, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(reference["root"], tmp_path / "project", symlinks=True))
    if stage == "fetch-model":
        shutil.rmtree(root / OUTPUT[stage])  # fetch from the source, not reuse
    before = outcome(root, stage)
    delay = random.Random(seed).uniform(0.3, 1.0) * reference["seconds"][stage]  # past most of the start-up

    process = subprocess.Popen(["tlpipe", stage], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()

    after_kill = outcome(root, stage)
    print(f"{stage} seed {seed}: killed after {delay:.2f}s, output {'new' if after_kill != before else 'as before'}")
    assert after_kill in (before, reference["outcomes"][stage]), "a half-written output sits where the output goes"
    if stage == "export":
        report, bundled = parity_pair(root)
        assert report in (None, bundled), "a parity report beside a bundle it is not the report of"
    rerun = tlpipe(root, stage)
    assert rerun.returncode == 0, rerun.stderr
    finished = outcome(root, stage)
    assert finished == reference["outcomes"][stage], differing(finished, reference["outcomes"][stage])
    assert leftovers(root, stage) == []
    if stage == "export":
        report, bundled = parity_pair(root)
        assert report is not None and report == bundled
