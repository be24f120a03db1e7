"""prefect.yaml on a real server: deploy, a process worker picks the run up, it completes with its artifacts.

Starts `prefect server start` on a free loopback port with its own PREFECT_HOME, creates the
process work pool with a concurrency limit of one, deploys with `prefect deploy --all` from a
project that holds the repository's prefect.yaml and flows/, starts a worker, triggers the
deployment with an override, and reads the run's state and artifacts back through the API.
Every process it starts is stopped at the end, also when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from factories import REPO

pytestmark = pytest.mark.slow
POOL = "tlpipe-process"
DEPLOYMENT = "tlpipe/weekly-retrain"
RUN_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrefectServer:
    """A real Prefect server and the processes that talk to it, all stopped by ``close``."""

    def __init__(self, home: Path) -> None:
        port = free_port()
        self.api = f"http://127.0.0.1:{port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_PORT": str(port),
        }
        self.processes: list[subprocess.Popen] = []
        self.logs = home / "logs"
        self.logs.mkdir(parents=True)
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
            [sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=cwd, env=self.env, capture_output=True, text=True
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
            assert self.processes[0].poll() is None, (self.logs / "server.log").read_text()
            time.sleep(0.5)
        raise AssertionError(f"the Prefect server was not healthy after {timeout_s}s")

    def post(self, path: str, body: dict) -> object:
        response = httpx.post(f"{self.api}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrefectServer]:
    running = PrefectServer(tmp_path / "prefect-home")
    try:
        yield running
    finally:
        running.close()


def test_the_weekly_deployment_runs_on_a_real_server_and_attaches_its_artifacts(server, dvc_project: Path) -> None:
    shutil.copy(REPO / "prefect.yaml", dvc_project / "prefect.yaml")
    shutil.copytree(REPO / "flows", dvc_project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    server.cli("work-pool", "create", POOL, "--type", "process")
    server.cli("work-pool", "set-concurrency-limit", POOL, "1")
    server.cli("deploy", "--all", cwd=dvc_project)
    server.start("worker", "worker", "start", "--pool", POOL, cwd=dvc_project)

    started = time.monotonic()
    output = server.cli(
        "deployment", "run", DEPLOYMENT, "--params", json.dumps({"overrides": {"train.epochs": 2}, "push": False})
    )
    flow_run_id = next(line.split()[-1] for line in output.splitlines() if "UUID" in line)
    state = wait_for_final_state(server, flow_run_id)
    seconds = time.monotonic() - started

    assert state == "COMPLETED", (server.logs / "worker.log").read_text()[-5000:]
    artifacts = server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    keys = {artifact["key"] for artifact in artifacts}
    assert {"data-validation", "test-metrics", "model-card", "onnx-parity"} <= keys, keys
    parity = next(artifact for artifact in artifacts if artifact["key"] == "onnx-parity")
    assert "Bundle: `" in parity["data"]  # where the handed-over bundle is
    assert yaml.safe_load((dvc_project / "params.yaml").read_text())["train"]["epochs"] == 2  # the override, for DVC
    assert (dvc_project / "models" / "bundle" / "model.onnx").is_file()
    [pool] = server.post("/work_pools/filter", {"work_pools": {"name": {"any_": [POOL]}}})
    assert pool["concurrency_limit"] == 1
    print(f"deployment run completed in {seconds:.0f}s after the trigger")


def wait_for_final_state(server: PrefectServer, flow_run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = httpx.get(f"{server.api}/flow_runs/{flow_run_id}", timeout=10).json()
        if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return run["state_type"]
        time.sleep(2)
    raise AssertionError(f"flow run {flow_run_id} did not finish in {RUN_TIMEOUT_S}s")
