"""Scale-out mode when its Redis goes away: calls are refused with a clear 503, and served again once it
is back (balances are rebuilt from PostgreSQL)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.gateway_process import GatewayProcess, free_port, openai_config, running_gateway
from tests.scaleout import scaleout_backing
from tollway.simulators.runner import SimulatorThread

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")


class PrivateRedis:
    """A redis-server of this test's own, so it can be stopped without touching anyone else's."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def outage(openai_sim: SimulatorThread, tmp_path: Path) -> Iterator[tuple[GatewayProcess, PrivateRedis]]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        with (
            scaleout_backing(TOLLWAY_REDIS_URL=f"redis://127.0.0.1:{server.port}/0") as env,
            running_gateway(tmp_path / "gw", openai_config(openai_sim.url), env) as gateway,
        ):
            yield gateway, server
    finally:
        server.stop()


def _chat(gateway: GatewayProcess, key: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_redis_outage_is_a_clear_503_and_recovers(outage: tuple[GatewayProcess, PrivateRedis]) -> None:
    gateway, server = outage
    key = gateway.create_key("outage", rpm=1000)
    assert _chat(gateway, key).status_code == 200
    server.stop()
    refused = _chat(gateway, key)
    assert refused.status_code == 503
    assert (
        refused.json()["error"]["code"] == "service_unavailable"
        and "metering store" in refused.json()["error"]["message"]
    )
    assert httpx.get(gateway.url + "/health").json()["checks"]["redis"] != "ok"
    server.start()
    deadline = time.monotonic() + 15
    while _chat(gateway, key).status_code != 200:
        assert time.monotonic() < deadline, "the gateway did not recover after Redis came back"
        time.sleep(0.2)
    # The restarted Redis kept nothing (no persistence): not the ledger stream, nor its reading group.
    # Calls served now must still reach the ledger in PostgreSQL.
    recovered = len(gateway.logs())
    served = [_chat(gateway, key) for _ in range(3)]
    ids = {answer.headers["x-tollway-request-id"] for answer in served if answer.status_code == 200}
    assert len(ids) == 3
    deadline = time.monotonic() + 15
    while not ids <= (written := _ledger_ids(gateway)):
        assert time.monotonic() < deadline, (
            f"calls after the restart never reached the ledger: {ids - written}"
        )
        time.sleep(0.2)
    since = gateway.logs()[recovered:]
    assert "NOGROUP" not in since, since
    # The outage itself is logged a line per failed retry, not a traceback each time.
    assert "Traceback" not in gateway.logs(), gateway.logs()


def _ledger_ids(gateway: GatewayProcess) -> set[str]:
    rows = gateway.admin("GET", "/admin/usage?project=outage&limit=1000", expect=200)["data"]
    return {row["request_id"] for row in rows}
