"""A batch workload survives a kill -9 of the server that runs it: after the restart it is
failed cleanly (ERROR, a statusDetail saying why), never left PROCESSING, and the dataset holds
no files of it. A real `offerbase serve` (SQLite), killed and started again on its data dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from real_server import clean_environment, free_port, token_headers

pytestmark = pytest.mark.xdist_group("batch-restart")  # one real server at a time

SEGMENT = "everyone"
PROFILES = 5_000  # enough that the job is still PROCESSING when the server is killed
WEB = "https://ns.adobe.com/xdm/channel-types/web"
DATES = {"startDate": "2020-01-01T00:00:00.000Z", "endDate": "2040-01-01T00:00:00.000Z"}
REP = {
    "channel": WEB,
    "placement": "P",
    "components": [{"type": "html", "format": "text/html", "content": "<p>x</p>"}],
}
CATALOG = [
    ("placements", "P", "", {"name": "P", "channel": WEB}),
    ("offers", "F", "fallback", {"name": "F", "status": "approved", "representations": [REP]}),
    (
        "offers",
        "O",
        "personalized",
        {
            "name": "O",
            "status": "approved",
            "rank": {"priority": 1},
            "representations": [REP],
            "selectionConstraint": {**DATES, "profileConstraintType": "none"},
        },
    ),
    ("offer-collections", "C", "", {"name": "C", "filterType": "offers", "ids": ["O"]}),
    (
        "offer-decisions",
        "D",
        "",
        {
            "name": "D",
            "status": "live",
            "fallback": "F",
            **DATES,
            "criteria": [{"placements": ["P"], "optionSelection": {"filter": "C"}}],
        },
    ),
]


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = clean_environment(data_dir)
    env["OFFERBASE_BATCH_LEASE_SECONDS"] = "3"
    env["OFFERBASE_BATCH_POLL_SECONDS"] = "0.2"
    process = subprocess.Popen(
        [sys.executable, "-m", "offerbase", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its worker processes are killed with it (killpg)
    )
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"offerbase serve exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("offerbase serve did not answer /health")


def _cli(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "offerbase", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        env=clean_environment(data_dir),
        timeout=300,
        check=True,
    )
    return done.stdout.decode()


def test_a_killed_servers_workload_is_failed_after_the_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    org = "KILL@AdobeOrg"
    credential = json.loads(_cli(data_dir, "credentials", "create", "--org", org, "--json"))
    profiles = tmp_path / "profiles.ndjson"
    with profiles.open("w") as handle:
        for i in range(PROFILES):
            line = {
                "identityMap": {"Email": [{"id": f"p{i}@example.com", "primary": True}]},
                "segmentMembership": {"ups": {SEGMENT: {"status": "realized"}}},
            }
            handle.write(json.dumps(line) + "\n")
    _cli(data_dir, "profiles", "import", str(profiles), "--org", org)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(data_dir, port)
    try:
        with httpx.Client(
            base_url=base, headers=token_headers(base, credential), timeout=60
        ) as http:
            for path, entity_id, offer_type, body in CATALOG:
                query = f"?offer-type={offer_type}" if offer_type else ""
                created = http.post(f"/data/core/dps/{path}/{entity_id}{query}", json=body)
                assert created.status_code == 201, created.text
            dataset = http.post("/data/core/dwm/datasets", json={"name": "kill"}).json()
            started = http.post(
                "/data/core/dwm/workloads/decisions",
                json={
                    "xdm:segmentIds": [SEGMENT],
                    "xdm:dataSetId": dataset["id"],
                    "xdm:propositionRequests": [{"xdm:activityId": "D", "xdm:placementId": "P"}],
                },
            )
            assert started.status_code == 200, started.text
            workload = f"/data/core/dwm/workloads/decisions/{started.json()['@id']}"
            for _ in range(1000):
                status = http.get(workload).json()["ode:status"]
                if status != "QUEUED":
                    break
                time.sleep(0.02)
            assert status == "PROCESSING", status
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # no graceful stop: the lease must run out
        server.wait(timeout=30)
    server = _start(data_dir, port)
    try:
        with httpx.Client(
            base_url=base, headers=token_headers(base, credential), timeout=60
        ) as http:
            for _ in range(300):  # the lease (3 s) runs out; the new runner fails the workload
                body = http.get(workload).json()
                if body["ode:status"] not in ("PROCESSING", "INGESTING"):
                    break
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert body["ode:status"] == "ERROR", body
    error = body["ode:statusDetail"]["errors"][0]
    assert error["code"] == "runner-lost"
    assert "restarted" in error["message"]
    dataset_path = Path(dataset["path"])
    assert not (dataset_path / started.json()["@id"]).exists()
    assert list(dataset_path.glob("*/part-*.parquet")) == []
