"""Scale-out mode when its PostgreSQL goes away: calls keep being served and metered (limits and balances
live in Redis), what needs the database answers a clear 503, and once it is back the ledger rows of the
calls served meanwhile are written, exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway_process import GatewayProcess, openai_config, running_gateway
from tests.scaleout import scaleout_backing
from tests.tcp_relay import TcpRelay
from tollway.simulators.runner import SimulatorThread


@pytest.fixture
def outage(openai_sim: SimulatorThread, tmp_path: Path) -> Iterator[tuple[GatewayProcess, TcpRelay]]:
    relay = TcpRelay(5432)  # the gateway reaches PostgreSQL only through it
    try:
        with scaleout_backing() as env:
            env["TOLLWAY_DATABASE_URL"] = env["TOLLWAY_DATABASE_URL"].replace(":5432/", f":{relay.port}/")
            with running_gateway(tmp_path / "gw", openai_config(openai_sim.url), env) as gateway:
                yield gateway, relay
    finally:
        relay.close()


def _chat(gateway: GatewayProcess, key: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers, timeout=30)


def test_database_outage_serves_calls_and_writes_their_ledger_after(
    outage: tuple[GatewayProcess, TcpRelay],
) -> None:
    gateway, relay = outage
    key = gateway.create_key("db-outage", rpm=1000)
    assert _chat(gateway, key).status_code == 200
    relay.cut()
    served = [_chat(gateway, key) for _ in range(5)]
    assert [answer.status_code for answer in served] == [200] * 5  # the key is cached, the meter in Redis
    ids = {answer.headers["x-tollway-request-id"] for answer in served}
    usage = httpx.get(
        gateway.url + "/admin/usage?project=db-outage",
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
        timeout=30,
    )
    assert usage.status_code == 503, usage.text
    assert usage.json()["error"]["code"] == "service_unavailable"
    assert "database or Redis is unavailable" in usage.json()["error"]["message"]
    assert httpx.get(gateway.url + "/health").json()["checks"]["database"] != "ok"
    relay.restore()
    deadline = time.monotonic() + 20
    while True:
        answer = gateway.admin("GET", "/admin/usage?project=db-outage&limit=1000")
        rows = answer.get("data", [])
        if ids <= {row["request_id"] for row in rows}:
            break
        assert time.monotonic() < deadline, f"the outage's calls never reached the ledger: {answer}"
        time.sleep(0.3)
    assert len(rows) == len({row["request_id"] for row in rows}) == 6  # each call once
    assert "Traceback" not in gateway.logs()
