"""`tollway serve --workers N`: several processes share the port and stay exact through Redis."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.gateway_process import GatewayProcess, openai_config, running_gateway, start_gateway
from tests.scaleout import scaleout_backing
from tollway.simulators.runner import SimulatorThread


@pytest.fixture(scope="module")
def workers(
    openai_sim: SimulatorThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with (
        scaleout_backing(TOLLWAY_WORKERS="2") as env,
        running_gateway(tmp_path_factory.mktemp("workers"), openai_config(openai_sim.url), env) as gateway,
    ):
        yield gateway


def _chat(url: str, key: str) -> int:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_two_workers_serve_and_keep_rpm_exact(workers: GatewayProcess) -> None:
    key = workers.create_key("workers", rpm=15)
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda _: _chat(workers.url, key), range(40)))
    assert statuses.count(200) == 15 and statuses.count(429) == 25


def test_workers_need_redis_when_metering(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The server refuses to start (limits would multiply by the number of workers); the message says why.
    with pytest.raises(RuntimeError, match="TOLLWAY_REDIS_URL"):
        start_gateway(tmp_path_factory.mktemp("noredis"), None, {"TOLLWAY_WORKERS": "2"})
