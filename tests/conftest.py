"""Shared fixtures: a simulator of OpenAI's API, and a real `tollway serve` process in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_process import GatewayProcess, openai_config, running_gateway
from tollway.simulators.runner import SimulatorThread

UPSTREAM_KEY = "sk-upstream-test"


@pytest.fixture(scope="session")
def openai_sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(api_key=UPSTREAM_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def gateway(
    openai_sim: SimulatorThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    data_dir: Path = tmp_path_factory.mktemp("gateway")
    with running_gateway(data_dir, openai_config(openai_sim.url)) as process:
        yield process
