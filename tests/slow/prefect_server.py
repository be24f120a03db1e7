"""A real ``prefect server start`` on a free loopback port, its workers, and what its log says about its services.

The server gets its own PREFECT_HOME with a logging config that also logs docket (the task queue the
server's periodic services run on) at INFO: docket's line for each finished pass of a service is how the
tests tell that every service ran, and its ERROR line for a failed pass is how they tell which one failed.
Every process started here is stopped by ``close``, also when the test fails.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
CLOSE_GRACE_S = 5  # how long close() lets the processes stop on SIGTERM before it kills their groups
LOG_LEVEL = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| (?P<level>[A-Z]+) +\| (?P<logger>\S+) - (?P<message>.*)$")
# Errors of the Prefect server on SQLite, not of tlpipe, that it recovers from: each is every string of a tuple in one
# record (the log line and its traceback). A worker channel heartbeat is written in a DEFERRED transaction that reads
# the work pool, then writes (Prefect 3.8.8, server/utilities/worker_channel.py): when another connection commits in
# between, SQLite refuses the write at once (SQLITE_BUSY_SNAPSHOT, "database is locked", whatever the busy timeout).
# The server closes that channel and the worker goes on heartbeating over REST. Seen once in a full suite on two busy
# cores. The same message with any other cause is still an error.
SQLITE_TRANSIENTS = (("Worker channel heartbeat persistence failed", "database is locked"),)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_logging_config(home: Path) -> None:
    """Prefect's own logging config plus docket at INFO, where Prefect reads it (``$PREFECT_HOME/logging.yml``)."""
    import prefect.logging

    config = yaml.safe_load((Path(prefect.logging.__file__).parent / "logging.yml").read_text())
    config["loggers"]["docket"] = {"level": "INFO"}
    (home / "logging.yml").write_text(yaml.safe_dump(config))


@dataclass(frozen=True)
class ServiceReport:
    """What the server log says: each periodic service's finished passes, every error (with its traceback), and
    the errors it recovered from (``SQLITE_TRANSIENTS``), apart."""

    passes: dict[str, int]
    failed_passes: dict[str, list[str]]
    errors: list[str]
    transients: list[str]

    def table(self) -> str:
        rows = [f"{'service':<40} {'passes':>6}  failed passes"]
        for service, count in sorted(self.passes.items()):
            rows.append(f"{service:<40} {count:>6}  {len(self.failed_passes.get(service, []))}")
        return "\n".join(rows)


def log_records(log: str) -> list[tuple[re.Match | None, str]]:
    """The log's records: each log line joined with the lines after it that are not log lines (its traceback).
    Lines before the first log line are a record of their own, without a match."""
    records: list[tuple[re.Match | None, list[str]]] = []
    for line in log.splitlines():
        match = LOG_LEVEL.match(line)
        if match or not records:
            records.append((match, [line]))
        else:
            records[-1][1].append(line)
    return [(match, "\n".join(lines)) for match, lines in records]


def read_service_report(log: str) -> ServiceReport:
    """Parse a server log: the perpetual services Prefect scheduled, how many passes of each finished, the errors
    (each with its traceback; a traceback after a line below ERROR is one too)."""
    passes: dict[str, int] = {}
    failed: dict[str, list[str]] = {}
    errors: list[str] = []
    transients: list[str] = []
    for match, record in log_records(log):
        message = match["message"] if match else ""
        if scheduled := re.search(r"Scheduling perpetual service: (\w+)", message):
            passes.setdefault(scheduled[1], 0)
        # docket: "↫" a periodic pass finished and the next was scheduled; "↩" at ERROR a pass raised
        finished = re.search(r"[↫↩] \[\s*[\d.]+\w+\] (\w+)\(", message)
        if (match and match["level"] in {"ERROR", "CRITICAL"}) or "Traceback (most recent call last)" in record:
            if any(all(part in record for part in parts) for parts in SQLITE_TRANSIENTS):
                transients.append(record)
                continue
            errors.append(record)
            if finished:
                failed.setdefault(finished[1], []).append(record)
        elif finished and "↫" in message:
            passes[finished[1]] = passes.get(finished[1], 0) + 1
    return ServiceReport(passes, failed, errors, transients)


class PrefectServer:
    """A real Prefect server and the processes that talk to it, all stopped by ``close``."""

    def __init__(self, home: Path, **settings: str) -> None:
        port = free_port()
        home.mkdir(parents=True)
        write_logging_config(home)
        self.api = f"http://127.0.0.1:{port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_LOGGING_LEVEL": "INFO",
            # SQLite's busy timeout. Beside another test process on two cores (pytest-xdist), a write can wait past
            # the default 10 s: the server then logs "database is locked" although the client retries and the run
            # completes. Prefect's own test mode waits 30 s for the same reason. A write that SQLite refuses at once
            # (a read transaction upgraded to a write while another writes) no timeout helps: test_deployment.py.
            "PREFECT_SERVER_DATABASE_TIMEOUT": "30",
            **settings,
        }
        self.processes: list[subprocess.Popen] = []
        self.logs = home / "logs"
        self.logs.mkdir()
        self.start("server", "server", "start", "--host", "127.0.0.1", "--port", str(port))
        self.wait_healthy()

    def start(self, name: str, *args: str, cwd: Path | None = None) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "prefect", *args], cwd=cwd, env=self.env, stdout=log, stderr=log,
                start_new_session=True,  # its own process group: close() stops the workers' flow runs too
            )
        )  # fmt: skip

    def cli(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def wait_healthy(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.processes[0].poll() is None, self.log("server")
            time.sleep(0.5)
        raise AssertionError(f"the Prefect server was not healthy after {timeout_s}s")

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.api}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> Any:
        response = httpx.post(f"{self.api}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def services(self) -> ServiceReport:
        return read_service_report(self.log("server"))

    def deployment(self, name: str) -> dict:
        return self.get(f"/deployments/name/{name}")

    def flow_runs(self, deployment_id: str, *state_types: str) -> list[dict]:
        query: dict = {"deployment_id": {"any_": [deployment_id]}}
        if state_types:
            query["state"] = {"type": {"any_": list(state_types)}}
        return self.post("/flow_runs/filter", {"flow_runs": query, "sort": "EXPECTED_START_TIME_ASC", "limit": 50})

    def wait_for(self, what: str, found: Callable[[], Any], timeout_s: float) -> Any:
        """Poll ``found`` until it returns something truthy; fail with the server's errors if it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if result := found():
                return result
            time.sleep(2)
        errors = "\n".join(self.services().errors[:20]) or "(no error lines in the server log)"
        raise AssertionError(f"{what}: nothing after {timeout_s:.0f}s. Server log errors:\n{errors}")

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        # Everything a test reads is read before close. CI's two slowest teardowns waited out a 20 s grace (21 and
        # 22 s, against 1.7 s for the same test alone; most likely a worker starting the next scheduled run).
        # Nothing needs a graceful stop here, so a short grace, then the whole group.
        deadline = time.monotonic() + CLOSE_GRACE_S
        for process in self.processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
