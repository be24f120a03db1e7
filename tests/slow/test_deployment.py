"""prefect.yaml on a real server: the schedules produce runs, a run the scheduler made completes on a worker, and
the drift check stops or retrains as its inputs say.

Each test starts `prefect server start` on a free loopback port with its own PREFECT_HOME (see
prefect_server.py), deploys with `prefect deploy --all` from a project that holds the repository's
prefect.yaml and flows/, and reads what happened back through the API. The pipeline's runs are the server
scheduler's; the drift check's two runs are asked for through the API, one after the other, since what
each should do depends on the inputs put in place before it. Each test ends by reading the server log:
every periodic service must have finished a pass, and no service may have logged an error (but for the one
SQLite transient the server recovers from, printed: prefect_server.SQLITE_TRANSIENTS).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml
from cronsim import CronSim
from factories import REPO, run_every_stage

from .prefect_server import FINAL_STATES, PrefectServer, ServiceReport
from .repo import dvc

pytestmark = pytest.mark.slow
POOL = "tlpipe-process"
FLOW = "tlpipe"
RUN_TIMEOUT_S = 600
SCHEDULING_TIMEOUT_S = 90  # the server schedules a new deployment within seconds, and every deployment each minute
INTERVAL_S = 10


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., PrefectServer]]:
    """Start a server with these settings (environment variables) on top of the defaults; stopped at the end."""
    started: list[PrefectServer] = []

    def start(**settings: str) -> PrefectServer:
        started.append(PrefectServer(tmp_path / "prefect-home", **settings))
        return started[-1]

    try:
        yield start
    finally:
        for server in started:
            server.close()


def deploy(server: PrefectServer, project: Path, config: dict) -> None:
    (project / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copytree(REPO / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    server.cli("work-pool", "create", POOL, "--type", "process")
    server.cli("work-pool", "set-concurrency-limit", POOL, "1")
    server.cli("deploy", "--all", cwd=project)


def deployment_named(server: PrefectServer, name: str) -> dict:
    """The deployment called ``name`` in prefect.yaml, whichever flow it deploys."""
    [deployment] = server.post("/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
    return deployment


def reproduce(project: Path) -> None:
    """The project as a finished `dvc repro` leaves it, made quicker: every stage in this process, then `dvc commit`
    records them in dvc.lock, without a process per stage (test_dvc_pipeline.py runs `dvc repro` itself)."""
    run_every_stage(project)
    dvc(project, "commit", "--force")
    assert dvc(project, "status").stdout.strip() == "Data and pipelines are up to date."


def assert_services_healthy(server: PrefectServer) -> ServiceReport:
    report = server.services()
    print(f"\nPrefect server services (from its log):\n{report.table()}")
    for transient in report.transients:
        print(f"a SQLite transient the server recovered from (prefect_server.SQLITE_TRANSIENTS):\n{transient}")
    assert report.passes, "no periodic service was scheduled: " + server.log("server")[-3000:]
    assert not report.errors, "the server logged errors:\n" + "\n".join(report.errors[:20])
    idle = [service for service, count in report.passes.items() if count == 0]
    assert not idle, f"services that never finished a pass: {idle}"
    return report


def test_every_deployment_in_prefect_yaml_gets_its_scheduled_runs(start_server, dvc_project: Path) -> None:
    server = start_server()  # the scheduler's defaults, as a user's server has them
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deploy(server, dvc_project, config)

    for spec in config["deployments"]:
        deployment = deployment_named(server, spec["name"])
        assert [s["active"] for s in deployment["schedules"]] == [s.get("active", True) for s in spec["schedules"]]
        runs = server.wait_for(
            f"SCHEDULED runs of {spec['name']}",
            lambda: server.flow_runs(deployment["id"], "SCHEDULED"),  # noqa: B023 - called at once, in this iteration
            SCHEDULING_TIMEOUT_S,
        )
        assert all(run["auto_scheduled"] and run["created_by"]["type"] == "SCHEDULE" for run in runs)
        starts = [datetime.fromisoformat(run["expected_start_time"]) for run in runs]
        [schedule] = spec["schedules"]  # each deployment has one; a second would need its runs told apart
        zone = ZoneInfo(schedule.get("timezone", "UTC"))
        upcoming = CronSim(schedule["cron"], datetime.now(zone))
        assert starts == [next(upcoming) for _ in starts], (spec["name"], starts)
        print(f"{spec['name']}: {len(runs)} SCHEDULED runs, the first at {starts[0].isoformat()}")
    time.sleep(5)  # one more pass of the 5 s services after the runs were made
    assert_services_healthy(server)


def test_a_scheduled_run_of_the_pipeline_fires_and_completes_on_the_worker(start_server, dvc_project: Path) -> None:
    # Three runs ahead instead of up to 100 (every 10 s is 360 an hour), and a worker that polls every 2 s
    # instead of 15: the test waits for them, a weekly deployment does not.
    # The 10 s schedule queues runs behind the one the worker (limit 1) is running, and the late-runs service
    # marked them Late while that run wrote its states: on two busy cores SQLite refused the service's write at
    # once ("database is locked", 75 ms in, so no busy timeout helps) and the server logged it. Those runs are
    # the test's artefact, not a user's, so they count as late only after an hour; the service still runs.
    server = start_server(
        PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS="3",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS="3600",
    )
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    [spec] = [spec for spec in config["deployments"] if spec["name"] == "weekly-retrain"]
    # The deployment as shipped, on a schedule that comes round within seconds, with the run settings of a test.
    spec["schedules"] = [
        {
            "interval": INTERVAL_S,
            "parameters": {"overrides": {"train.epochs": 2}, "push": False},
        }
    ]
    deploy(server, dvc_project, config)
    server.start("worker", "worker", "start", "--pool", POOL, cwd=dvc_project)
    deployment = server.deployment(f"{FLOW}/weekly-retrain")

    started = time.monotonic()
    server.wait_for("runs made by the scheduler", lambda: server.flow_runs(deployment["id"]), SCHEDULING_TIMEOUT_S)
    first = server.wait_for(
        "a run of the deployment that reached a final state",
        lambda: server.flow_runs(deployment["id"], *FINAL_STATES),
        RUN_TIMEOUT_S,
    )[0]
    seconds = time.monotonic() - started

    history = server.get(f"/flow_run_states/?flow_run_id={first['id']}")
    print(f"\nflow run {first['name']} ({first['id']}), created by {first['created_by']}:")
    for state in sorted(history, key=lambda state: state["timestamp"]):
        print(f"  {state['timestamp']}  {state['type']:<10} {state['name']}")
    assert first["state_type"] == "COMPLETED", server.log("worker")[-5000:]
    assert first["auto_scheduled"] and first["created_by"]["type"] == "SCHEDULE"
    assert first["infrastructure_pid"], "no worker process ran it"
    assert [s["type"] for s in sorted(history, key=lambda state: state["timestamp"])][:1] == ["SCHEDULED"]
    assert {"PENDING", "RUNNING", "COMPLETED"} <= {s["type"] for s in history}
    assert first["parameters"]["overrides"] == {"train.epochs": 2}  # the schedule's own parameters

    # What the run did: its tasks were recorded (TaskRunRecorder), its events persisted (EventPersister).
    task_runs = server.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [first["id"]]}}})
    assert {"validate", "prepare", "fetch_model", "train", "evaluate", "export"} <= {run["name"] for run in task_runs}
    completed = {
        "filter": {
            "any_resource": {"id": [f"prefect.flow-run.{first['id']}"]},
            "event": {"name": ["prefect.flow-run.Completed"]},
        }
    }
    server.wait_for("the run's Completed event", lambda: server.post("/events/filter", completed)["events"], 30)
    artifacts = server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [first["id"]]}}})
    keys = {artifact["key"] for artifact in artifacts}
    assert {"data-validation", "test-metrics", "model-card", "onnx-parity"} <= keys, keys
    parity = next(artifact for artifact in artifacts if artifact["key"] == "onnx-parity")
    assert "Bundle: `" in parity["data"]  # where the handed-over bundle is
    assert yaml.safe_load((dvc_project / "params.yaml").read_text())["train"]["epochs"] == 2  # the override, for DVC
    assert (dvc_project / "models" / "bundle" / "model.onnx").is_file()
    [pool] = server.post("/work_pools/filter", {"work_pools": {"name": {"any_": [POOL]}}})
    assert pool["concurrency_limit"] == 1
    assert_services_healthy(server)
    print(f"the scheduled run reached {first['state_type']} {seconds:.0f}s after the deployment")


def run_deployment(server: PrefectServer, deployment: dict, parameters: dict) -> dict:
    """Ask for a run of ``deployment`` now, as `prefect deployment run` does; return it once in a final state."""
    run = server.post(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})
    return server.wait_for(
        f"flow run {run['name']} in a final state",
        lambda: (now := server.get(f"/flow_runs/{run['id']}"))["state_type"] in FINAL_STATES and now,
        RUN_TIMEOUT_S,
    )


def show_logs(server: PrefectServer, run: dict, wanted: tuple[str, ...] = ()) -> list[str]:
    """Print the run's log lines (those holding one of ``wanted``, if given) as the worker sent them; return them."""
    logs = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "sort": "TIMESTAMP_ASC"})
    tasks = server.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}})
    names = {task["id"]: f"task run '{task['name']}'" for task in tasks}
    lines = [f"{log['timestamp'][11:19]} {names.get(log['task_run_id'], 'flow run')}: {log['message']}" for log in logs]
    lines = [line for line in lines if not wanted or any(word in line for word in wanted)]
    print(f"\nflow run {run['name']} ({run['id']}), {run['state_name']}:", *lines, sep="\n  ")
    return lines


def test_the_drift_check_stops_on_inputs_like_the_test_data_and_retrains_on_drifted_ones(
    start_server, dvc_project: Path
) -> None:
    reproduce(dvc_project)  # the bundle to check against, and a dvc.lock: the raw data is as validate last saw it
    test_texts = pd.read_csv(dvc_project / "data" / "prepared" / "test.csv")["input"].tolist()
    incoming = dvc_project / "data" / "incoming"  # the deployment's default inputs folder
    incoming.mkdir()
    server = start_server(PREFECT_WORKER_QUERY_SECONDS="2")
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    # The drift check as shipped, its schedule off: the test asks for each run once its inputs are in place.
    [spec] = config["deployments"] = [spec for spec in config["deployments"] if spec["name"] == "drift-check"]
    spec["schedules"][0]["active"] = False
    deploy(server, dvc_project, config)
    server.start("worker", "worker", "start", "--pool", POOL, cwd=dvc_project)
    deployment = deployment_named(server, "drift-check")

    # Day one: the test split's texts twice over, the same distribution as the bundle's reference sample.
    (incoming / "monday.txt").write_text("\n".join(test_texts * 2) + "\n")
    quiet = run_deployment(server, deployment, {"push": False})
    # Day two: unrelated strings; the retraining it starts trains for 2 epochs instead of 3, so train reruns.
    (incoming / "monday.txt").unlink()
    drifted_texts = [f"{i * 7919} {'zq' * (i % 5 + 1)} {i}.{i} ###" for i in range(24)]
    (incoming / "tuesday.txt").write_text("\n".join(drifted_texts) + "\n")
    drifted = run_deployment(server, deployment, {"push": False, "overrides": {"train.epochs": 2}})

    key_lines = ("Drift check of", "too few", "labelled data", "decision", "Stage ", "Finished in state")
    quiet_lines = show_logs(server, quiet, key_lines)
    drifted_lines = show_logs(server, drifted, key_lines)
    assert quiet["state_type"] == "COMPLETED", server.log("worker")[-5000:]
    assert drifted["state_type"] == "COMPLETED", server.log("worker")[-5000:]
    assert quiet["infrastructure_pid"] and drifted["infrastructure_pid"], "no worker process ran them"

    def subflows(run: dict) -> list[dict]:
        return server.post("/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [run["id"]]}}})

    def artifacts(run: dict) -> dict[str, dict]:
        found = server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
        return {artifact["key"]: artifact for artifact in found}

    # No drift, no new data: the check is recorded and nothing retrains.
    assert subflows(quiet) == []
    check = artifacts(quiet)["drift-check"]["data"]
    assert "## Drift check: no retraining: no drift, no new labelled data" in check
    assert "| inputs | 24 in `data/incoming` |" in check and "| new labelled data | none |" in check
    assert any("no drift detected" in line for line in quiet_lines)

    # Drift: the pipeline runs as a subflow and retrains (train reruns with the new setting; validate is up to date).
    [retrain] = subflows(drifted)
    assert server.get(f"/flows/{retrain['flow_id']}")["name"] == FLOW and retrain["state_type"] == "COMPLETED"
    assert retrain["parameters"]["overrides"] == {"train.epochs": 2} and retrain["parameters"]["push"] is False
    stage_runs = server.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [retrain["id"]]}}})
    states = {run["name"]: run["state_name"] for run in stage_runs}
    assert states["validate"] == "Skipped" and states["train"] == states["export"] == "Completed", states
    assert "## Drift check: retrain: drift" in artifacts(drifted)["drift-check"]["data"]
    assert {"test-metrics", "onnx-parity"} <= set(artifacts(retrain))
    assert any("drift: these inputs differ" in line for line in drifted_lines)
    show_logs(server, retrain, ("Stage ",))
    assert yaml.safe_load((dvc_project / "params.yaml").read_text())["train"]["epochs"] == 2
    assert dvc(dvc_project, "status").stdout.strip() == "Data and pipelines are up to date."
    assert_services_healthy(server)
