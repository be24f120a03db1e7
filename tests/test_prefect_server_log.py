"""The slow tier reads a Prefect server's log to judge its services: errors keep their tracebacks, and only the
SQLite transient the server recovers from is set apart (tests/slow/prefect_server.py)."""

from __future__ import annotations

from slow.prefect_server import read_service_report

SERVICES = """\
12:09:16.524 | INFO    | prefect.server.services.perpetual_services - Scheduling perpetual service: monitor_late_runs
12:09:16.530 | INFO    | prefect.server.services.perpetual_services - Scheduling perpetual service: monitor_workers
12:09:16.566 | INFO    | docket.dependencies - ↫ [     2ms] monitor_late_runs(){monitor_late_runs}
12:09:21.566 | INFO    | docket.dependencies - ↫ [     3ms] monitor_late_runs(){monitor_late_runs}
"""
HEARTBEAT = "11:25:09.949 | ERROR   | prefect.server.utilities.worker_channel - Worker channel heartbeat persistence \
failed: work_pool=tlpipe-process worker_name=ProcessWorker 342e2f1e"
LOCKED = """\
Traceback (most recent call last):
  File "aiosqlite/core.py", line 105, in run
sqlite3.OperationalError: database is locked

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "prefect/server/utilities/worker_channel.py", line 686, in _receive_loop
sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked
"""
POOL_GONE = """\
Traceback (most recent call last):
  File "prefect/server/utilities/worker_channel.py", line 686, in _receive_loop
RuntimeError: Worker channel work pool no longer exists
"""


def test_a_service_report_counts_passes_and_keeps_each_error_whole() -> None:
    failed_pass = "12:09:26.001 | ERROR   | docket.worker - ↩ [    10ms] monitor_workers(){monitor_workers}"
    report = read_service_report(SERVICES + failed_pass + "\n" + POOL_GONE)

    assert report.passes == {"monitor_late_runs": 2, "monitor_workers": 0}
    assert report.errors == [failed_pass + "\n" + POOL_GONE.rstrip("\n")]
    assert list(report.failed_passes) == ["monitor_workers"]
    assert report.transients == []


def test_only_a_heartbeat_that_sqlite_refused_is_a_transient() -> None:
    report = read_service_report(SERVICES + HEARTBEAT + "\n" + LOCKED + HEARTBEAT + "\n" + POOL_GONE)

    assert report.transients == [HEARTBEAT + "\n" + LOCKED.rstrip("\n")]
    assert report.errors == [HEARTBEAT + "\n" + POOL_GONE.rstrip("\n")]  # the same message, another cause


def test_a_traceback_after_a_line_below_error_is_an_error() -> None:
    crash = "12:09:30.000 | INFO    | uvicorn.error - Application shutdown complete."
    report = read_service_report(SERVICES + crash + "\n" + POOL_GONE)

    assert report.errors == [crash + "\n" + POOL_GONE.rstrip("\n")]
