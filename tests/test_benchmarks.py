"""The benchmarks: every script still builds its command line, and the harness they share does what it says.

The scripts train for minutes to hours, so this runs each one's ``--help`` (its imports and its argument
parser), all in one subprocess to pay for the heavy imports once, and the ported studies whose configuration
runs in seconds (few_shot's TF-IDF baseline, lexical_channel's word TF-IDF); the others (fold_count and
image_strategies train for 25 s and more at their smallest) have their report sections tested on cell
records instead. The harness (benchmarks/harness) is tested with a tiny worker (tests/benchmark_worker.py)
on synthetic labels.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import psutil
import pytest
from factories import BENCHMARKS, benchmark_module

WORKER = "benchmark_worker:score"  # tests/ is importable here, so the cells' subprocesses can import it too


harness = benchmark_module("harness")

DRIVER = """
import contextlib, io, runpy, sys, traceback
sys.path.insert(0, "benchmarks")  # run as a script, a file's folder is on sys.path: `harness`, `timing`
failures = []
for path in sys.argv[1:]:
    script = open(path).read()
    sys.argv = [path, "--help"]
    try:
        with contextlib.redirect_stdout(io.StringIO()) as shown:
            runpy.run_path(path, run_name="__main__" if '__name__ == "__main__"' in script else "benchmark")
        if '__name__ == "__main__"' in script:
            failures.append(f"{path}: --help returned instead of printing usage and exiting")
    except SystemExit as exit:
        if exit.code not in (0, None) or "usage" not in shown.getvalue():
            failures.append(f"{path}: --help exited with {exit.code!r}")
    except BaseException:
        failures.append(f"{path}:\\n{traceback.format_exc()}")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def test_every_benchmark_script_imports_and_shows_its_help() -> None:
    scripts = sorted(str(path) for path in BENCHMARKS.glob("*.py"))
    assert len(scripts) > 10, scripts

    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *scripts], cwd=BENCHMARKS.parent, capture_output=True, text=True, timeout=600
    )

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


def test_the_studies_name_every_real_dataset_of_the_registry_by_its_modality() -> None:
    # The harness cannot import the registry when it is imported (benchmarks/ is not on sys.path then), so it
    # keeps the names; this keeps them equal to real_data.DATASETS.
    real_data = benchmark_module("real_data")
    by_modality = {m: tuple(n for n in real_data.DATASETS if real_data.dataset_module(n).MODALITY == m)
                   for m in ("text", "image")}  # fmt: skip

    assert importlib.import_module("harness.text_datasets").REAL == by_modality["text"]
    assert importlib.import_module("harness.real_datasets").IMAGES == by_modality["image"]


def tiny_cells(markers: Path, settings: dict[str, dict], seeds: tuple[int, ...] = (0,)) -> list:
    """The grid of the tiny worker: one dataset, one size, these settings (params beside ``markers``)."""
    chosen = [harness.Setting(name, {"markers": str(markers), **params}) for name, params in settings.items()]
    return harness.plan(["synthetic"], chosen, [4], seeds)


def test_cached_only_reports_the_cells_that_ran_before_and_runs_none_of_the_others(tmp_path: Path) -> None:
    cells = tiny_cells(tmp_path, {"good": {"wrong": 0}, "poor": {"wrong": 9}})
    harness.run_grid(cells[:1], WORKER, "code-1", tmp_path / "cache", progress=lambda line: None)
    ran_before = sorted(tmp_path.glob("*-*-*"))

    lines: list[str] = []
    records = harness.run_grid(cells, WORKER, "code-1", tmp_path / "cache", progress=lines.append, cached_only=True)

    assert [(r["setting"], r["cached"]) for r in records] == [("good", True)]
    assert sorted(tmp_path.glob("*-*-*")) == ran_before  # the worker did not run again
    assert "poor" in lines[-1] and lines[-1].endswith(": not run (--cached-only)")


def test_a_grid_runs_each_cell_in_a_subprocess_and_a_rerun_takes_it_from_the_cache(tmp_path: Path) -> None:
    cells = tiny_cells(tmp_path, {"good": {"wrong": 0}, "poor": {"wrong": 9}})

    first = harness.run_grid(cells, WORKER, "code-1", tmp_path / "cache", progress=lambda line: None)
    ran = sorted(marker.name for marker in tmp_path.glob("*-*-*"))
    again = harness.run_grid(cells, WORKER, "code-1", tmp_path / "cache", progress=lambda line: None)

    assert [r["status"] for r in first] == ["ok", "ok"] and not any(r["cached"] for r in first)
    assert len(ran) == 2 and not any(name.startswith(f"{os.getpid()}-") for name in ran)
    assert [r["score"]["macro_f1"] for r in first] == [1.0, pytest.approx(0.7, abs=0.01)]
    assert all(r["cached"] for r in again) and [r["score"] for r in again] == [r["score"] for r in first]
    assert sorted(marker.name for marker in tmp_path.glob("*-*-*")) == ran


STOPPED_GRID = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import harness
slow = harness.Setting("slow", {"markers": sys.argv[3], "wrong": 0, "stage_sleep": 60})
cells = harness.plan(["synthetic"], [slow], [4], [0])
harness.run_grid(cells, "benchmark_worker:score", "code-1", harness.grid.Path(sys.argv[3]) / "cache")
"""


def test_a_study_stopped_with_sigterm_stops_its_running_cell_and_the_process_the_cell_started(
    tmp_path: Path,
) -> None:
    study = subprocess.Popen(
        [sys.executable, "-c", STOPPED_GRID, str(BENCHMARKS), str(Path(__file__).parent), str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    cell, stage = _started_cell_and_stage(tmp_path)

    study.send_signal(signal.SIGTERM)
    study.wait(timeout=30)

    assert _ended(cell), "the cell's process outlived the stopped study"
    assert _ended(stage), "the process the cell started outlived the stopped study"
    assert study.returncode == 128 + signal.SIGTERM
    assert not list(tmp_path.glob("cache/*.json"))  # a stopped cell is not cached


def test_a_cell_past_its_time_limit_fails_and_leaves_no_process_it_started_running(tmp_path: Path) -> None:
    cells = tiny_cells(tmp_path, {"slow": {"wrong": 0, "stage_sleep": 60}})

    [record] = harness.run_grid(cells, WORKER, "code-1", tmp_path / "cache", timeout=12, progress=lambda line: None)

    _, stage = _started_cell_and_stage(tmp_path)
    assert record["status"] == "failed" and "ran past the 12 s limit" in record["error"]
    assert _ended(stage), "the process the timed-out cell started is still running"


def _started_cell_and_stage(markers: Path) -> tuple[int, int]:
    """The process ids of the running cell and of the stage process it started (from the worker's markers)."""
    deadline = time.monotonic() + 60
    while not (stages := list(markers.glob("stage-*"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stages, "the cell never started its stage process"
    [cell] = list(markers.glob("*-slow-0"))
    return int(cell.name.split("-")[0]), int(stages[0].name.split("-")[1])


def _ended(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_fresh_runs_a_cached_cell_again(tmp_path: Path) -> None:
    cells = tiny_cells(tmp_path, {"good": {"wrong": 0}})
    harness.run_grid(cells, WORKER, "code-1", tmp_path / "cache", progress=lambda line: None)

    again = harness.run_grid(cells, WORKER, "code-1", tmp_path / "cache", fresh=True, progress=lambda line: None)

    assert not again[0]["cached"] and len(list(tmp_path.glob("*-good-0"))) == 2


def test_a_cell_key_changes_with_the_code_version_the_settings_and_the_cell() -> None:
    cell = harness.Cell("tickets", "default", {"train": {"strategy": "auto"}}, 8, 0)
    renamed = harness.Cell("tickets", "also default", {"train": {"strategy": "auto"}}, 8, 0)
    key = cell.key("abc+0", WORKER)

    assert key == renamed.key("abc+0", WORKER)  # same params, same run
    assert key != cell.key("abc+1", WORKER)
    assert key != harness.Cell("tickets", "default", {"train": {"strategy": "full"}}, 8, 0).key("abc+0", WORKER)
    assert key != harness.Cell("tickets", "default", cell.params, 8, 1).key("abc+0", WORKER)
    assert key != harness.Cell("tickets", "default", cell.params, 16, 0).key("abc+0", WORKER)
    assert key != harness.Cell("requests", "default", cell.params, 8, 0).key("abc+0", WORKER)


def test_without_git_the_code_version_hashes_the_files_and_changes_with_them(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    module = tmp_path / "src" / "model.py"
    module.write_text("LEARNING_RATE = 1e-4\n")
    before = harness.code_version(tmp_path)

    module.write_text("LEARNING_RATE = 2e-4\n")

    assert before.startswith("files:") and harness.code_version(tmp_path) != before


def test_in_a_git_repository_an_uncommitted_change_under_src_changes_the_code_version(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("LEARNING_RATE = 1e-4\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "start"]):
        subprocess.run([*git, *command], cwd=tmp_path, check=True, capture_output=True)
    committed = harness.code_version(tmp_path)

    (tmp_path / "src" / "model.py").write_text("LEARNING_RATE = 2e-4\n")
    edited = harness.code_version(tmp_path)
    (tmp_path / "src" / "new.py").write_text("")

    assert not committed.startswith("files:") and len({committed, edited, harness.code_version(tmp_path)}) == 3


def test_a_commit_outside_the_measured_code_keeps_the_code_version_and_one_inside_changes_it(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("LEARNING_RATE = 1e-4\n")
    (tmp_path / "README.md").write_text("# before\n")
    versions = []
    for change in ({}, {"README.md": "# after\n"}, {"src/model.py": "LEARNING_RATE = 2e-4\n"}):
        for name, text in change.items():
            (tmp_path / name).write_text(text)
        for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "step", "--allow-empty"]):
            subprocess.run([*git, *command], cwd=tmp_path, check=True, capture_output=True)
        versions.append(harness.code_version(tmp_path))

    assert versions[0] == versions[1] != versions[2]


def test_a_failing_cell_is_reported_with_its_error_and_the_rest_of_the_grid_runs(tmp_path: Path) -> None:
    cells = tiny_cells(tmp_path, {"broken": {"fail": True}, "good": {"wrong": 0}})

    records = harness.run_grid(cells, WORKER, "code-1", tmp_path / "cache", progress=lambda line: None)
    table = harness.write_report(tinybenchmark_module(["broken", "good"]), records, tmp_path / "out.json", {})

    assert [r["status"] for r in records] == ["failed", "ok"]
    assert records[0]["error"] == "exited with status 1"
    assert "the tiny worker was asked to fail" in records[0]["log_tail"]
    assert "## Failed cells" in table and "| synthetic | 4 | broken | 0 | exited with status 1 |" in table
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1  # a failed cell is retried, not cached


def test_report_only_rebuilds_the_table_and_keeps_what_the_run_recorded_about_itself(tmp_path: Path) -> None:
    study = tinybenchmark_module(["a", "b"])
    records = [answered("a", 0, 3), answered("b", 0, 6)]
    out = tmp_path / "tiny.json"
    run = {"command": "benchmarks/tiny.py --cached-only", "code_version": "abc", "started": "2026-12-07T00:00:00+00:00",
           "wall_seconds": 12.5, "not_run": 2}  # fmt: skip
    harness.write_report(study, records, out, run)
    (tmp_path / "tiny.md").unlink()

    harness.main(study, ["--out", str(out), "--report-only"])

    rebuilt = json.loads(out.read_text())
    assert {key: rebuilt[key] for key in run} == run
    assert rebuilt["cells"] == records and (tmp_path / "tiny.md").read_text().startswith("# Tiny")


def tinybenchmark_module(settings: list[str], reference: str | None = None) -> object:
    return harness.Study(
        name="tiny", title="Tiny", description="A tiny study.", worker=WORKER, datasets=("synthetic",),
        settings=tuple(harness.Setting(name) for name in settings), sizes=(4,), seeds=(0, 1),
        reference=reference or settings[-1],
    )  # fmt: skip


def answered(setting: str, seed: int, wrong: int) -> dict:
    """A cell record as the tiny worker would return it, without a subprocess."""
    actual = [row % 3 for row in range(60)]
    predicted = [(label + 1) % 3 if row % 60 < wrong else label for row, label in enumerate(actual)]
    score = 1.0 - wrong / 60  # only its mean and spread are read here
    return {"dataset": "synthetic", "setting": setting, "size": 4, "seed": seed, "status": "ok",
            "score": {"macro_f1": score}, "predictions": predicted, "actual": actual, "seconds": 1.0}  # fmt: skip


def test_the_report_gives_means_spreads_and_a_paired_interval_that_excludes_0_only_for_a_real_gap(
    tmp_path: Path,
) -> None:
    records = [answered("better", 0, 0), answered("better", 1, 3), answered("same", 0, 24), answered("same", 1, 30),
               answered("reference", 0, 24), answered("reference", 1, 30)]  # fmt: skip
    study = tinybenchmark_module(["better", "same", "reference"])

    table = harness.write_report(study, records, tmp_path / "tiny.json", {"command": "tiny"}, resamples=300)
    written = json.loads((tmp_path / "tiny.json").read_text())
    compared = {c["setting"]: c for c in written["comparisons"]}

    assert "| 4 | better | 2 | 0.975 ± 0.035 | 1.0 | reference |" in table
    assert "| 4 | reference | 2 | 0.550 ± 0.071 | 1.0 | - | - |" in table
    assert compared["better"]["low"] > 0 and compared["better"]["rows"] == 120
    assert compared["same"]["low"] <= 0 <= compared["same"]["high"]
    assert "]*" in table.split("| better |")[1].splitlines()[0]
    assert "]*" not in table.split("| same |")[1].splitlines()[0]
    assert (tmp_path / "tiny.md").read_text() == table and written["cells"] == records


def test_the_interval_narrows_with_a_lower_confidence_level() -> None:
    actual = [row % 3 for row in range(60)]
    ours = [(label + 1) % 3 if row < 6 else label for row, label in enumerate(actual)]
    theirs = [(label + 1) % 3 if row < 18 else label for row, label in enumerate(actual)]

    _, low95, high95 = harness.paired_bootstrap(actual, ours, theirs, resamples=300, confidence=0.95)
    point, low80, high80 = harness.paired_bootstrap(actual, ours, theirs, resamples=300, confidence=0.8)

    assert low95 < low80 < point < high80 < high95


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bootstraps_difference_is_scikit_learns_macro_f1_difference(seed: int) -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    actual = rng.choice(["ham", "spam", "phish", "ads"], 80)
    ours = np.where(rng.random(80) < 0.6, actual, rng.choice(["ham", "spam", "never-true"], 80))
    theirs = np.where(rng.random(80) < 0.4, actual, rng.choice(["ham", "ads"], 80))
    labels = np.unique(actual)

    point, _, _ = harness.paired_bootstrap(actual, ours, theirs, resamples=10)

    expected = f1_score(actual, ours, labels=labels, average="macro", zero_division=0) - f1_score(
        actual, theirs, labels=labels, average="macro", zero_division=0
    )
    assert point == pytest.approx(expected, abs=1e-12)


def test_a_study_refuses_to_replace_results_the_harness_did_not_write(tmp_path: Path) -> None:
    earlier = tmp_path / "few_shot.json"
    earlier.write_text(json.dumps({"runs": []}))

    with pytest.raises(harness.StudyError, match="pass --out"):
        harness.main(tinybenchmark_module(["a", "b"]), ["--out", str(earlier), "--cache", str(tmp_path / "cache")])

    assert json.loads(earlier.read_text()) == {"runs": []}


def test_a_study_with_an_unknown_reference_fails_when_it_is_built() -> None:
    with pytest.raises(harness.StudyError, match="name no setting"):
        tinybenchmark_module(["a", "b"], reference="c")


def test_a_setting_limited_to_some_sizes_runs_only_at_those() -> None:
    settings = [harness.Setting("everywhere"), harness.Setting("small", sizes=(8,))]

    cells = harness.plan(["tickets", "requests"], settings, [64, 8], [0], dataset_sizes={"requests": (64,)})

    assert [(c.dataset, c.size, c.setting) for c in cells] == [
        ("tickets", 8, "everywhere"), ("tickets", 8, "small"), ("tickets", 64, "everywhere"),
        ("requests", 64, "everywhere"),
    ]  # fmt: skip


def test_few_shot_runs_its_tfidf_baseline_through_the_harness_and_reruns_from_the_cache(tmp_path: Path) -> None:
    command = [sys.executable, "benchmarks/few_shot.py", "--settings", "tfidf", "--datasets", "support_tickets",
               "--sizes", "4", "--seeds", "0", "--resamples", "50", "--out", str(tmp_path / "few_shot.json"),
               "--cache", str(tmp_path / "cache")]  # fmt: skip

    first = subprocess.run(command, cwd=BENCHMARKS.parent, capture_output=True, text=True, timeout=300)
    again = subprocess.run(command, cwd=BENCHMARKS.parent, capture_output=True, text=True, timeout=300)

    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    results = json.loads((tmp_path / "few_shot.json").read_text())
    assert [(c["setting"], c["status"]) for c in results["cells"]] == [("tfidf", "ok")]
    assert 0 < results["cells"][0]["score"]["macro_f1"] <= 1 and len(results["cells"][0]["predictions"]) == 120
    assert "| 4 | tfidf | 1 |" in (tmp_path / "few_shot.md").read_text()
    assert "macro_f1" in first.stdout and "(cached)" in again.stdout


def test_lexical_channel_cross_validates_word_tfidf_through_the_harness(tmp_path: Path) -> None:
    command = [sys.executable, "benchmarks/lexical_channel.py", "--settings", "word", "--datasets", "support_tickets",
               "--sizes", "4", "--seeds", "0", "--resamples", "50", "--out", str(tmp_path / "lexical_channel.json"),
               "--cache", str(tmp_path / "cache")]  # fmt: skip

    done = subprocess.run(command, cwd=BENCHMARKS.parent, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cell = json.loads((tmp_path / "lexical_channel.json").read_text())["cells"][0]
    assert cell["status"] == "ok" and len(cell["details"]["fold_macro_f1"]) == 3
    assert len(cell["predictions"]) == 24 and 0 < cell["score"]["test_macro_f1"] <= 1
    assert "| support_tickets | 4 | " in (tmp_path / "lexical_channel.md").read_text()


def fold_run(setting: str, dataset: str, seed: int, undrawn: float, chose: str, cross_validated: float) -> dict:
    """A fold_count cell record as its worker would leave it."""
    folds = int(setting.split(" ")[1])
    return {"dataset": dataset, "setting": setting, "params": {"split": {"folds": folds}}, "size": 8, "seed": seed,
            "status": "ok", "score": {"macro_f1": undrawn}, "seconds": 10.0 * folds,
            "details": {"chose": chose, "training_data_macro_f1": {chose: cross_validated}, "undrawn_rows": 300,
                        "model_selection": "cross_validation"}}  # fmt: skip


def test_fold_count_judges_its_rule_on_the_default_and_reports_each_candidates_pessimism() -> None:
    fold_count = benchmark_module("fold_count")
    records = [fold_run("default 3 folds", d, s, 0.80, "contrastive", 0.70) for d in ("a", "b") for s in (0, 1)]
    better = [fold_run("default 5 folds", d, s, 0.82, "linear_probe", 0.75) for d in ("a", "b") for s in (0, 1)]
    probe = [fold_run("linear_probe 3 folds", "a", 0, 0.60, "linear_probe", 0.50)]

    met = "\n".join(fold_count.report(records + better + probe))
    not_met = "\n".join(fold_count.report(records + better[:2] + [fold_run("default 5 folds", "b", 0, 0.80, "x", 0)]))

    assert "| a | 8 | 300 | 5 | 2 | +0.020 (+0.020, +0.020) | 1.67 | linear_probe, linear_probe |" in met
    assert "on every dataset run): met." in met and "on every dataset run): not met." in not_met
    assert "| a | 8 | 3 | contrastive | 2 | -0.100 |" in met and "| a | 8 | 3 | linear_probe | 1 | -0.100 |" in met
    assert "| 5 | linear_probe |" not in met  # the default's probe is the probe's own row's, not counted twice


def test_fold_count_judges_fewer_folds_on_the_real_datasets_at_64_per_class() -> None:
    fold_count = benchmark_module("fold_count")

    def run(folds: int, dataset: str, seed: int, undrawn: float, train_seconds: float) -> dict:
        record = fold_run(f"default {folds} folds", dataset, seed, undrawn, "freeze_unfreeze", 0.9)
        record["details"]["train_seconds"] = train_seconds
        return record | {"size": 64}

    shipped = [run(3, d, s, 0.80, 100.0) for d in ("rotten_tomatoes", "reuters_r8") for s in (0, 1)]
    level = [run(2, d, s, 0.798, 70.0) for d in ("rotten_tomatoes", "reuters_r8") for s in (0, 1)]
    worse = [run(2, "reuters_r8", s, 0.78, 70.0) for s in (0, 1)]
    slow = [run(2, "reuters_r8", s, 0.80, 90.0) for s in (0, 1)]

    assert "in at most 0.8 of the train stage's time on every real dataset run): met (" in "\n".join(
        fold_count.report(shipped + level)
    )
    assert "reuters_r8 -0.002 in 0.70 of the time" in "\n".join(fold_count.report(shipped + level))
    assert "): not met (" in "\n".join(fold_count.report(shipped + level[:2] + worse))
    assert "): not met (" in "\n".join(fold_count.report(shipped + level[:2] + slow))
    assert "not judged" in "\n".join(fold_count.report(shipped))


def test_fold_count_scores_the_best_mean_and_the_one_standard_error_rule_by_each_candidates_own_row() -> None:
    fold_count = benchmark_module("fold_count")

    def candidate(strategy: str, seed: int, undrawn: float, train_seconds: float) -> dict:
        record = fold_run(f"{strategy} 2 folds", "rotten_tomatoes", seed, undrawn, strategy, 0.7)
        record["details"]["train_seconds"] = train_seconds
        return record

    def default(seed: int, means: dict[str, tuple[float, float]]) -> dict:
        record = fold_run("default 2 folds", "rotten_tomatoes", seed, 0.0, "x", 0.7)
        record["details"]["cross_validation"] = {
            strategy: {"mean": mean, "std": std, "fold_scores": [mean - std, mean + std]}
            for strategy, (mean, std) in means.items()
        }
        return record

    rows = [candidate("freeze_unfreeze", seed, 0.70, 100.0) for seed in (0, 1)]
    rows += [candidate("linear_probe", seed, 0.68 + 0.04 * seed, 5.0) for seed in (0, 1)]
    # seed 0: the probe is inside the best's standard error (0.08 / sqrt 2); seed 1: it is not
    defaults = [default(0, {"freeze_unfreeze": (0.75, 0.08), "linear_probe": (0.72, 0.01)}),
                default(1, {"freeze_unfreeze": (0.75, 0.01), "linear_probe": (0.72, 0.01)})]  # fmt: skip

    report = "\n".join(fold_count.report(rows + defaults))

    kept = "| 0.700 (freeze_unfreeze, freeze_unfreeze) | 0.690 (linear_probe, freeze_unfreeze) | -0.010 |"
    assert f"| rotten_tomatoes | 8 | 2 | 2 {kept}" in report
    assert "none more than 1 point below): not met (mean -0.010, lowest -0.010)." in report
    better_probe = [r | {"score": {"macro_f1": 0.74}} if "linear" in r["setting"] else r for r in rows]
    assert "): met (mean +0.020" in "\n".join(fold_count.report(better_probe + defaults))


def image_run(setting: str, seed: int, valid: float, test: float, fit: int, best_epoch: int = 3) -> dict:
    """An image_strategies cell record as its worker would leave it (six classes)."""
    strategy = setting.split("@")[0]
    per_class = {str(label): fit for label in range(6)}
    return {"dataset": "digits", "setting": setting, "params": {"strategy": strategy}, "size": fit * 4 // 3,
            "seed": seed, "status": "ok", "score": {"macro_f1": valid, "test_macro_f1": test}, "seconds": 5.0,
            "details": {"best_epoch": best_epoch, "epochs": 12, "fit_per_class": per_class,
                        "valid_per_class": {label: fit // 3 for label in per_class}, "train_seconds": 4.0,
                        "cpu_threads": 2}}  # fmt: skip


def test_image_strategies_derives_auto_from_validation_and_shows_test_only_beside_it() -> None:
    image_strategies = benchmark_module("image_strategies")
    records = [image_run("linear_probe", 0, 0.90, 0.70, 48), image_run("freeze_unfreeze", 0, 0.85, 0.95, 48, 12),
               image_run("full", 0, 0.99, 0.99, 6)]  # fmt: skip

    report = "\n".join(image_strategies.report(records))

    assert "| 64 (48) | auto → linear_probe | 0.900 | 0.700 | 8 | 0 | 3/12 |" in report  # test 0.95 never chose
    assert "freeze_unfreeze - linear_probe -0.050 (freeze_unfreeze higher on 0/1 seeds)" in report
    assert "freeze_unfreeze: the best validation epoch was the last one trained in 1 of 1 runs" in report
    assert "| 8 (6) | auto" not in report  # at 6 fit per class auto's only candidate, the linear probe, did not run


def _records(real_suite: ModuleType, pairs: set[tuple[str, int]], lead: float) -> list[dict]:
    return [
        {"dataset": dataset, "size": size, "seed": seed, "setting": setting, "score": {"macro_f1": score}}
        for dataset, size in sorted(pairs)
        for seed in (0, 1)
        for setting, score in ((real_suite.DEFAULT, 0.5 + lead), (real_suite.PROBE, 0.5))
    ]


def test_the_real_suites_verdict_needs_every_dataset_and_size_it_covers() -> None:
    real_suite = benchmark_module("real_suite")
    one_missing = set(real_suite.JUDGED) - {("mnist", 64)}

    full_lead, short_lead, full_tie = (
        "\n".join(real_suite.target(_records(real_suite, pairs, lead)))
        for pairs, lead in ((real_suite.JUDGED, 0.03), (one_missing, 0.03), (real_suite.JUDGED, 0.0))
    )

    assert "Target met." in full_lead
    assert f"Not judged: the default ran on {len(one_missing)} of the {len(real_suite.JUDGED)}" in short_lead
    assert "Target not met." in full_tie  # level with the probe is no lead of 2 points


def test_the_tuned_probe_chooses_c_on_the_rows_it_is_given_with_no_more_folds_than_the_smallest_class() -> None:
    pipeline_runs = importlib.import_module("harness.pipeline_runs")  # the package is imported above, as `harness`
    rng = np.random.default_rng(0)
    # Unit vectors whose classes differ by a small shift: the default C of 1 underfits them.
    centres = np.eye(3, 64) * 0.3
    rows = np.vstack(
        [centre + rng.normal(0, 0.05, (count, 64)) for centre, count in zip(centres, (8, 8, 3), strict=True)]
    )
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    labels = [0] * 8 + [1] * 8 + [2] * 3

    probe = pipeline_runs.tuned_probe(rows, labels)

    assert probe.C_ in pipeline_runs.CS and probe.C_ > 1.0
    assert probe.scores_.shape[0] == 3  # three folds: the smallest class has three rows


def test_the_real_suites_verdict_is_given_against_each_probe_that_ran() -> None:
    real_suite = benchmark_module("real_suite")
    records = _records(real_suite, set(real_suite.JUDGED), 0.03)
    records += [{**record, "setting": real_suite.TUNED_PROBE, "score": {"macro_f1": 0.52}}
                for record in records if record["setting"] == real_suite.PROBE]  # fmt: skip

    report = "\n".join(real_suite.target(records))

    assert "| mnist | 8 | +0.030 | +0.010 |" in report
    assert "Against the frozen probe: datasets where the default is below it at some size: none" in report
    assert report.count("Target met.") == 1  # +3 points over the frozen probe
    assert "mean lead at 8 and 16 per class: +0.010 (target +0.02). Target not met." in report  # +1 over the tuned


def test_the_real_suites_stronger_bodies_are_zoo_entries_of_their_modality_and_run_only_when_asked_for() -> None:
    from tlpipe.model_zoo import known_model

    pipeline_runs = importlib.import_module("harness.pipeline_runs")
    real_suite = benchmark_module("real_suite")
    for modality, source in pipeline_runs.STRONG_SOURCES.items():
        entry = known_model(source.removeprefix("pip:"))
        assert entry is not None and entry.modality == modality
        assert source != pipeline_runs.SOURCES[modality]
    by_default = {setting.name for setting in real_suite.STUDY.select(None)}
    strong = {setting.name for setting in real_suite.STUDY.select(["*strong body"])}
    assert len(strong) == 3 and not by_default & strong


def test_the_ranked_row_chooses_the_body_whose_probe_separates_the_training_rows(monkeypatch, tmp_path) -> None:
    import pandas as pd

    pipeline_runs = importlib.import_module("harness.pipeline_runs")
    rng = np.random.default_rng(0)
    pool = pd.DataFrame({"input": [f"t{i}" for i in range(60)], "label": ["a", "b", "c"] * 20})
    test = pd.DataFrame({"input": [f"u{i}" for i in range(30)], "label": ["a", "b", "c"] * 10})
    onehot = {label: np.eye(3, 16)[index] for index, label in enumerate("abc")}

    def features(labels: pd.Series, signal: float) -> np.ndarray:
        rows = np.stack([signal * onehot[label] for label in labels]) + rng.normal(0, 1, (len(labels), 16))
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    # The default body's features carry no label; the strong body's carry it clearly.
    by_source = {source: {"pool": features(pool["label"], signal), "test": features(test["label"], signal)}
                 for source, signal in ((pipeline_runs.SOURCES["text"], 0.0),
                                        (pipeline_runs.STRONG_SOURCES["text"], 4.0))}  # fmt: skip
    monkeypatch.setattr(pipeline_runs, "_features", lambda dataset, pool, test, scratch, source: by_source[source])
    dataset = type("Dataset", (), {"modality": "text"})()

    result = pipeline_runs.ranked_probe(dataset, pool, test, pool.iloc[:30], tmp_path, seed=0)

    strong = pipeline_runs.STRONG_SOURCES["text"]
    bodies = result["details"]["bodies"]
    assert result["details"]["chosen"] == strong
    assert bodies[strong]["ranking_macro_f1"] > bodies[pipeline_runs.SOURCES["text"]]["ranking_macro_f1"] + 0.3
    assert result["score"]["macro_f1"] == bodies[strong]["test_macro_f1"] > 0.9


def _ranked(real_suite: ModuleType, seed: int, ranking: tuple[float, float], test: tuple[float, float]) -> dict:
    """A ``tuned probe, ranked body`` record: (default body, strong body) ranking scores and test macro-F1."""
    default, strong = real_suite.SOURCES["text"], real_suite.STRONG_SOURCES["text"]
    bodies = {source: {"ranking_macro_f1": rank, "test_macro_f1": score}
              for source, rank, score in zip((default, strong), ranking, test, strict=True)}  # fmt: skip
    chosen = strong if ranking[1] > ranking[0] else default
    return {"dataset": "reuters_r8", "size": 8, "seed": seed, "setting": real_suite.RANKED,
            "score": {"macro_f1": bodies[chosen]["test_macro_f1"]},
            "details": {"chosen": chosen, "bodies": bodies}}  # fmt: skip


def test_the_real_suite_reports_how_often_rank_models_order_held_on_the_test_set() -> None:
    real_suite = benchmark_module("real_suite")
    # Seed 0 agrees with the test set (tau +1, the better body); seed 1 is reversed (tau -1, 0.2 below it).
    records = [_ranked(real_suite, 0, (0.6, 0.8), (0.70, 0.90)), _ranked(real_suite, 1, (0.8, 0.6), (0.70, 0.90))]
    pipelines = ((real_suite.DEFAULT, 0.75), (real_suite.DEFAULT + real_suite.STRONG, 0.85))  # seed 0 only
    fine_tuned = [{"dataset": "reuters_r8", "size": 8, "seed": 0, "setting": setting, "score": {"macro_f1": score}}
                  for setting, score in pipelines]  # fmt: skip

    report = "\n".join(real_suite.body_ranking(records + fine_tuned))

    assert "| reuters_r8 | 8 | 2 | 1 | +0.00 | +1.00 (1) | -0.100 | +0.100 |" in report
    assert real_suite.kendall_tau({"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 2, "c": 1}) == -1.0
    assert real_suite.body_ranking(fine_tuned) == []


def test_cached_features_are_keyed_by_the_code_that_computes_them_and_not_by_the_training_loop() -> None:
    repo = BENCHMARKS.parent
    paths = set(harness.version.feature_paths(repo))

    for module in ("sources", "feature_cache", "model_zoo", "modalities/base", "modalities/text/model",
                   "modalities/image/model", "modalities/__init__", "__init__"):  # fmt: skip
        assert f"src/tlpipe/{module}.py" in paths
    assert not {"src/tlpipe/training.py", "src/tlpipe/stages/train.py", "src/tlpipe/label_review.py"} & paths
    assert all((repo / path).is_file() for path in paths)


def _development_run(
    dataset: str, seed: int, ece: tuple[float, float], nll: tuple[float, float], temperature: float
) -> dict:
    fitted = {"ece_before": ece[0], "ece_after": ece[1], "nll_before": nll[0], "nll_after": nll[1]}
    development = {
        "examples": 100,
        "macro_f1": 0.7,
        "calibration": {"temperature": temperature, "test": fitted},
        "prediction_sets": {"test": {"coverage": 0.9, "mean_set_size": 1.2}},
    }
    return {"dataset": dataset, "size": 16, "seed": seed, "setting": "development",
            "details": {"development": development}}  # fmt: skip


def test_calibration_reports_the_unused_training_rows_apart_and_counts_the_runs_the_temperature_helped() -> None:
    calibration = benchmark_module("calibration")
    records = [_development_run("texts", 0, (0.10, 0.05), (0.6, 0.5), 1.5),
               _development_run("texts", 1, (0.10, 0.20), (0.6, 0.7), 2.5),
               _development_run("texts", 2, (0.10, 0.40), (0.6, 0.9), 0.05),  # at the bound: served raw
               {"dataset": "texts", "size": 16, "seed": 0, "setting": "default", "details": {}}]  # fmt: skip

    report = "\n".join(calibration.development_report(records))

    assert (
        "| texts | 16 | 3 | 100 | 1.35 | 1 of 3 | 0.100 | 0.217 | 0.117 | 1 of 3 | 0.600 | 0.600 | 1 of 3 |" in report
    )
    assert calibration.development_report(records[3:]) == []


def test_semi_supervised_reports_the_thresholds_chosen_and_how_many_pseudo_labels_were_right() -> None:
    semi_supervised = benchmark_module("semi_supervised")

    def run(seed: int, threshold: float | None, given: int, right: int) -> dict:
        details = {"threshold": threshold, "pseudo_labels": given}
        if threshold is not None:
            details["pseudo_labels_right"] = right
        return {"dataset": "texts", "size": 8, "seed": seed, "setting": "self-training", "details": details}

    records = [run(0, 0.9, 100, 90), run(1, None, 0, 0), run(2, 0.8, 200, 100),
               {"dataset": "texts", "size": 8, "seed": 0, "setting": "labelled only", "details": {}}]  # fmt: skip

    report = "\n".join(semi_supervised.report(records))

    assert "| texts | 8 | 0.9, off, 0.8 | 100 | 0.70 |" in report
    assert semi_supervised.report(records[3:]) == []


def test_the_real_suite_compares_the_train_stages_time_with_its_estimate() -> None:
    real_suite = benchmark_module("real_suite")
    timings = [{"estimated": {"low": low, "high": high}, "taken": taken}
               for low, high, taken in ((50.0, 100.0, 80.0), (20.0, 40.0, 60.0))]  # fmt: skip
    records = [{"setting": "default", "details": {"train_time": timing}} for timing in timings]

    report = "\n".join(real_suite.estimates(records + [{"setting": "frozen probe", "details": {}}]))

    assert "| default | 2 | 1.15 [0.80, 1.50] | 2.30 [1.60, 3.00] |" in report
    assert "frozen probe" not in report


def test_the_real_suites_preset_rows_leave_the_body_to_a_known_preset() -> None:
    from tlpipe.presets import PRESETS

    real_suite = benchmark_module("real_suite")
    presets = {setting.name: setting.params["params"] for setting in real_suite.STUDY.select(["preset*"])}

    assert set(presets) == {real_suite.FAST, real_suite.BEST}
    assert all(change["preset"] in PRESETS and change["model"] == {"source": None} for change in presets.values())
    assert not set(presets) & {setting.name for setting in real_suite.STUDY.select(None)}


def _body_rule_records(
    body_rule: ModuleType, gains: dict[str, float], rules: tuple[str, str] | None = None, seeds: range = range(3)
) -> list[dict]:
    """At each judged size and seed: the first rule keeps the default body at 0.6, the second the strong one at
    0.6 + gain (default: one standard error, then best mean)."""
    incumbent, challenger = rules or (body_rule.ONE_SE, body_rule.BEST_MEAN)
    return [
        {"dataset": dataset, "size": size, "seed": seed, "setting": setting,
         "score": {"macro_f1": 0.6 + (gain if setting == challenger else 0.0)},
         "details": {"chosen": "strong" if setting == challenger else "default"}}
        for dataset, gain in gains.items() for size in body_rule.RULE_SIZES for seed in seeds
        for setting in (incumbent, challenger)
    ]  # fmt: skip


def test_the_body_rule_study_adopts_best_mean_only_for_a_clear_gain_that_no_dataset_pays_for() -> None:
    body_rule = benchmark_module("body_rule")
    verdicts = {
        name: "\n".join(body_rule.report(_body_rule_records(body_rule, gains)))
        for name, gains in {
            "clear gain": {"a": 0.02, "b": 0.01},
            "too small": {"a": 0.004, "b": 0.004},
            "one dataset pays": {"a": 0.05, "b": -0.02},
        }.items()
    }

    assert "**best mean replaces one standard error**" in verdicts["clear gain"]
    assert "+1.50 points on average" in verdicts["clear gain"]
    assert "| a | 8 | 3 | 0 / 3 | +2.0 (+2.0, +2.0, +2.0) |" in verdicts["clear gain"]
    assert "**one standard error stays**" in verdicts["too small"]
    assert "**one standard error stays**" in verdicts["one dataset pays"]
    assert "the worst dataset's mean -2.00" in verdicts["one dataset pays"]


def test_the_larger_body_rule_is_judged_against_best_mean_on_the_fresh_seeds_alone() -> None:
    body_rule = benchmark_module("body_rule")
    rules = (body_rule.BEST_MEAN, body_rule.LARGER)
    seen = _body_rule_records(body_rule, {"a": 0.05, "b": 0.05}, rules, range(3))  # the seeds that suggested it
    fresh = _body_rule_records(body_rule, {"a": 0.0, "b": 0.001}, rules, range(5, 8))

    flattered = "\n".join(body_rule.report(seen))
    judged = "\n".join(body_rule.report(seen + fresh))

    assert "larger within one SE against best mean" not in flattered  # no fresh seed: nothing judged
    assert "(fresh seeds only)" in judged
    assert "larger within one SE − best mean +0.05 points on average" in judged
    assert "**best mean stays**" in judged
