"""What orchestration costs: the same pipeline run directly, through `dvc repro` and through the Prefect flow.

One tiny project (the tests' 2-layer BERT and 36 training texts, so the stages' own work is a few
seconds and the orchestration shows) is copied three times, and the whole pipeline runs in each
from clean outputs, the three taking turns (direct, dvc, prefect, direct, ...):

- direct: one Python process calls the six stage functions in order (``tlpipe.cli.run_stage``);
- dvc: ``dvc repro``, which starts ``tlpipe <stage>`` once per stage and records ``dvc.lock``;
- prefect: ``tlpipe run``, the Prefect flow on a temporary local server (started by the run, as on
  a machine without a server configured), each task reproducing its DVC stage.

Then, with everything up to date, a no-op ``dvc repro`` and a no-op ``tlpipe run`` (every stage
skipped), timed alternately. Reported: median seconds, and the overheads as differences
(dvc - direct, prefect - dvc, prefect - direct) and ratios. Targets: the flow adds under 15 s to
a pipeline run; a no-op ``dvc repro`` takes under 2 s.

    .venv/bin/python benchmarks/overhead.py               # about 8 minutes on 2 CPU cores
    .venv/bin/python benchmarks/overhead.py --repeats 3 --noop-repeats 7

Results: benchmarks/results/overhead.json (every timing) and overhead.md (the table).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from factories import dvc_project_at, make_table, write_tiny_bert  # noqa: E402  (the tests' tiny project)
from timing import interleaved  # noqa: E402  (benchmarks/timing.py)

from tlpipe.artifacts import write_json  # noqa: E402

OUTPUTS = ("data/manifest", "data/prepared", "data/pretrained", "data/cache", "models", "reports")
DIRECT = "\n".join(
    [
        "from tlpipe.cli import run_stage",
        "from tlpipe.stages import STAGES",
        "for stage in STAGES:",
        "    run_stage(stage)",
    ]
)


def clean(project: Path) -> None:
    """Remove every stage output, the lock and DVC's cache, so the next run reproduces everything.

    The cache goes too: its run-cache would otherwise restore the outputs of an earlier run of the
    same stage instead of running it.
    """
    for output in (*OUTPUTS, ".dvc/cache"):
        shutil.rmtree(project / output, ignore_errors=True)
    (project / "dvc.lock").unlink(missing_ok=True)


def command(project: Path, args: list[str], env: dict[str, str], fresh: bool = True) -> Callable[[], None]:
    def run() -> None:
        if fresh:
            clean(project)
        done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed in {project}:\n{done.stderr[-3000:]}")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="full pipeline runs per front door")
    parser.add_argument("--noop-repeats", type=int, default=5, help="no-op runs of dvc repro and tlpipe run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model = write_tiny_bert(root / "tiny-bert")
        train, test, no_int8 = make_table(12), make_table(4, offset=100), {"export": {"quantize": "none"}}
        projects = {
            name: dvc_project_at(root / name, model, train, test, no_int8) for name in ("direct", "dvc", "prefect")
        }
        bin_dir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1",
            "PREFECT_HOME": str(root / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        }
        env.pop("PREFECT_API_URL", None)  # a temporary server, as on a machine without one configured
        full = interleaved(
            {
                "direct": command(projects["direct"], [sys.executable, "-c", DIRECT], env),
                "dvc": command(projects["dvc"], ["dvc", "repro", "--quiet"], env),
                "prefect": command(projects["prefect"], ["tlpipe", "run"], env),
            },
            warmup=0,
            repeats=args.repeats,
        )
        noop = interleaved(
            {
                "dvc repro, nothing to do": command(projects["dvc"], ["dvc", "repro", "--quiet"], env, fresh=False),
                "tlpipe run, nothing to do": command(projects["prefect"], ["tlpipe", "run"], env, fresh=False),
            },
            warmup=1,
            repeats=args.noop_repeats,
        )

    median = {name: statistics.median(times) for name, times in {**full, **noop}.items()}
    table = [
        f"Orchestration overhead, tiny text project, 2-layer BERT; median of {args.repeats} full runs and "
        f"{args.noop_repeats} no-op runs, taking turns",
        "",
        "| run | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds:.1f} |" for name, seconds in median.items()),
        "",
        "| overhead | seconds | ratio |",
        "|---|---|---|",
        *(
            f"| {label} | {median[slow] - median[fast]:+.1f} | {median[slow] / median[fast]:.2f} |"
            for label, slow, fast in (
                ("dvc repro over direct calls", "dvc", "direct"),
                ("Prefect flow over dvc repro", "prefect", "dvc"),
                ("Prefect flow over direct calls", "prefect", "direct"),
            )
        ),
    ]
    print("\n".join(table))
    results = REPO / "benchmarks" / "results"
    figures = {"seconds": {**full, **noop}, "median": median, "machine_cores": os.cpu_count()}
    write_json(results / "overhead.json", figures)
    (results / "overhead.md").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f}s in all)")
