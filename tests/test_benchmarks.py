"""Every script in benchmarks/ still imports and builds its command line: none rots silently when the code moves.

The scripts train for minutes to hours, so this runs each one's ``--help`` (its imports and its argument
parser), all in one subprocess to pay for the heavy imports once. The libraries the scripts share
(no ``__main__`` block) are imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

DRIVER = """
import contextlib, io, runpy, sys, traceback
sys.path.insert(0, "benchmarks")  # the scripts import their neighbours, as when run from the command line
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
