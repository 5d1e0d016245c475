"""Metering end to end: real `tollway serve` processes, embedded (SQLite) and scale-out (two replicas on one
PostgreSQL + Redis), driven over HTTP. Limits and credits must be exact, and the ledger must match."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway_process import GatewayProcess, openai_config, start_gateway
from tests.scaleout import scaleout_backing
from tollway.simulators.runner import SimulatorThread

FIXED_MODEL = """
  - id: upstream:fixed-price
    upstream_model: gpt-4o-mini
    capabilities: [chat]
    pricing: {per_request: 0.01}
"""
PRICE = Decimal("0.01")
MESSAGES = [{"role": "user", "content": "hello"}]
HOLD_SECONDS = 4


def _insert_model(config: str) -> str:
    head, tail = config.split("routing:", 1)
    return head.rstrip("\n") + "\n" + FIXED_MODEL.strip("\n") + "\nrouting:" + tail


@pytest.fixture(scope="module")
def scaleout_env() -> Iterator[dict[str, str]]:
    # Short holds and reclaims, so the test can watch a dead replica's holds come back and its records
    # be taken over.
    with scaleout_backing(
        TOLLWAY_MAX_CALL_SECONDS=str(HOLD_SECONDS), TOLLWAY_LEDGER_RECLAIM_SECONDS="1"
    ) as env:
        yield env


def _chat(gateway_url: str, key: str, model: str = "upstream:fixed-price", stream: bool = False) -> int:
    return _chat_with_id(gateway_url, key, model, stream)[0]


def _chat_with_id(
    gateway_url: str, key: str, model: str = "upstream:fixed-price", stream: bool = False
) -> tuple[int, str | None]:
    """The status (0: no answer) and the request id the ledger row carries."""
    body: dict[str, Any] = {"model": model, "messages": MESSAGES}
    if stream:
        body["stream"] = True
    try:
        response = httpx.post(
            gateway_url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
    except httpx.HTTPError:
        return 0, None
    return response.status_code, response.headers.get("x-tollway-request-id")


def _hammer(urls: list[str], key: str, count: int, workers: int = 16) -> list[int]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda i: _chat(urls[i % len(urls)], key), range(count)))


def _usage_rows(gateway: GatewayProcess, project: str) -> list[dict[str, Any]]:
    return list(gateway.admin("GET", f"/admin/usage?project={project}&limit=10000")["data"])


def _assert_rate_headers_count_down(url: str, key: str) -> None:
    """Each admitted call answers with the six OpenAI rate-limit headers, its own admission counted."""
    remaining = []
    for _ in range(2):
        answered = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "upstream:fixed-price", "messages": MESSAGES, "max_tokens": 50},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answered.status_code == 200, answered.text
        headers = answered.headers
        assert headers["x-ratelimit-limit-requests"] == "10"
        assert headers["x-ratelimit-limit-tokens"] == "100000"
        assert headers["x-ratelimit-reset-requests"].endswith("s")
        assert headers["x-ratelimit-reset-tokens"].endswith("s")
        remaining.append(
            (headers["x-ratelimit-remaining-requests"], int(headers["x-ratelimit-remaining-tokens"]))
        )
    (first_requests, first_tokens), (second_requests, second_tokens) = remaining
    assert (first_requests, second_requests) == ("9", "8")
    assert 100_000 - 50 >= first_tokens > second_tokens  # each reservation holds at least the output budget


def _assert_too_large_is_a_400(url: str, key: str) -> None:
    """A call reserving more tokens than the key's TPM limit holds in a minute is a 400 on both surfaces,
    saying what to lower: a 429 would have the SDKs retry a call that can never be admitted."""
    openai_client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="limited to 1,000 tokens per minute"):
        openai_client.chat.completions.create(
            model="upstream:fixed-price",
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=5000,
        )
    anthropic_client = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="Lower max_tokens"):
        anthropic_client.messages.create(model="upstream:fixed-price", max_tokens=5000, messages=MESSAGES)  # type: ignore[arg-type]
    answered = openai_client.chat.completions.create(
        model="upstream:fixed-price",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=500,
    )
    assert answered.choices[0].message.content


@pytest.fixture(scope="module")
def gw(openai_sim: SimulatorThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("metering"), _insert_model(openai_config(openai_sim.url)))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def replicas(
    openai_sim: SimulatorThread, scaleout_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[GatewayProcess]]:
    config = _insert_model(openai_config(openai_sim.url))
    data = tmp_path_factory.mktemp("replicas")
    processes = [start_gateway(data / f"r{i}", config, scaleout_env) for i in range(2)]
    yield processes
    for process in processes:
        process.stop()


class TestEmbedded:
    def test_rpm_is_exact_and_429_carries_headers(self, gw: GatewayProcess) -> None:
        key = gw.create_key("rpm-embedded", rpm=10)
        statuses = _hammer([gw.url], key, 25)
        assert statuses.count(200) == 10 and statuses.count(429) == 15
        refused = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": "upstream:fixed-price", "messages": MESSAGES},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert refused.headers["x-ratelimit-limit-requests"] == "10"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"

    def test_admitted_calls_carry_rate_headers(self, gw: GatewayProcess) -> None:
        _assert_rate_headers_count_down(gw.url, gw.create_key("headers-embedded", rpm=10, tpm=100_000))

    def test_a_call_larger_than_the_tpm_limit_is_a_400(self, gw: GatewayProcess) -> None:
        _assert_too_large_is_a_400(gw.url, gw.create_key("too-large-embedded", tpm=1000))

    def test_credits_exact_and_402(self, gw: GatewayProcess) -> None:
        project = gw.admin(
            "POST", "/admin/projects", {"name": "credits-embedded", "credit_enforced": True}, expect=201
        )
        gw.admin(
            "POST",
            f"/admin/projects/{project['id']}/credits",
            {"amount": "0.105", "note": "test"},
            expect=201,
        )
        for amount in ("1000000000", "0.00000000001"):  # past what the ledger holds; finer than it keeps
            refused = gw.admin(
                "POST", f"/admin/projects/{project['id']}/credits", {"amount": amount}, expect=400
            )
            assert refused["error"]["param"] == "amount", refused
        for cap in ("1e30", "0.00000000001"):  # a spend cap is money too: as bounded, as fine
            refused = gw.admin(
                "POST", "/admin/keys", {"project": "credits-embedded", "spend_cap": cap}, expect=400
            )
            assert refused["error"]["param"] == "spend_cap", refused
        key = gw.admin("POST", "/admin/keys", {"project": "credits-embedded"}, expect=201)["key"]
        statuses = _hammer([gw.url], key, 20)
        assert statuses.count(200) == 10 and statuses.count(402) == 10
        refused = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": "upstream:fixed-price", "messages": MESSAGES},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_credit"
        shown = gw.admin("GET", f"/admin/projects/{project['id']}")
        assert Decimal(shown["balance"]) == Decimal("0.005")
        rows = [r for r in _usage_rows(gw, "credits-embedded") if r["status"] == 200]
        assert len(rows) == 10 and sum(Decimal(str(r["cost"])) for r in rows) == 10 * PRICE

    def test_stream_costs_the_same_as_unstreamed(self, gw: GatewayProcess) -> None:
        key = gw.create_key("stream-cost")
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
        rows = _usage_rows(gw, "stream-cost")
        assert sorted(r["streamed"] for r in rows) == [False, True]
        costs = {Decimal(str(r["cost"])) for r in rows}
        assert len(costs) == 1 and costs == {Decimal(raw.headers["x-tollway-cost"])}
        assert all(r["input_tokens"] > 0 and r["output_tokens"] > 0 for r in rows)

    def test_cost_tools(self, gw: GatewayProcess) -> None:
        key = gw.create_key("cost-tools")
        headers = {"Authorization": f"Bearer {key}"}
        count = httpx.post(
            gw.url + "/infra/ai/tokens/count",
            json={"model": "gpt-4o-mini", "messages": "Hello world"},
            headers=headers,
        )
        assert count.json()["status"] == "ok" and count.json()["data"]["prompt_tokens"] > 2
        estimate = httpx.post(
            gw.url + "/infra/ai/cost/estimate",
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "Hi"}],
                "expected_output_tokens": 1000,
            },
            headers=headers,
        ).json()["data"]
        output = next(item for item in estimate["breakdown"] if item["item"] == "output_tokens")
        assert Decimal(output["cost"]) == Decimal("0.0006")
        compare = httpx.post(
            gw.url + "/v1/ai/cost/compare",
            json={
                "models": ["gpt-4o-mini", "upstream:fixed-price"],
                "messages": "Hi",
                "expected_output_tokens": 10,
            },
            headers=headers,
        ).json()["data"]
        assert compare["cheapest"] == "upstream:gpt-4o-mini" and len(compare["estimates"]) == 2


class TestScaleOut:
    def test_rpm_exact_across_replicas(self, replicas: list[GatewayProcess]) -> None:
        key = replicas[0].create_key("rpm-shared", rpm=20)
        statuses = _hammer([r.url for r in replicas], key, 60)
        assert statuses.count(200) == 20 and statuses.count(429) == 40

    def test_admitted_calls_carry_rate_headers(self, replicas: list[GatewayProcess]) -> None:
        key = replicas[0].create_key("headers-scaleout", rpm=10, tpm=100_000)
        _assert_rate_headers_count_down(replicas[0].url, key)

    def test_a_call_larger_than_the_tpm_limit_is_a_400(self, replicas: list[GatewayProcess]) -> None:
        _assert_too_large_is_a_400(replicas[1].url, replicas[0].create_key("too-large-scaleout", tpm=1000))

    def test_credits_exact_across_replicas(self, replicas: list[GatewayProcess]) -> None:
        first = replicas[0]
        project = first.admin(
            "POST", "/admin/projects", {"name": "credits-shared", "credit_enforced": True}, expect=201
        )
        first.admin("POST", f"/admin/projects/{project['id']}/credits", {"amount": "0.255"}, expect=201)
        key = first.admin("POST", "/admin/keys", {"project": "credits-shared"}, expect=201)["key"]
        statuses = _hammer([r.url for r in replicas], key, 60)
        assert statuses.count(200) == 25  # floor(0.255 / 0.01)
        assert set(statuses) == {200, 402}
        balance = Decimal(replicas[1].admin("GET", f"/admin/projects/{project['id']}")["balance"])
        assert balance == Decimal("0.005")
        rows = _wait_for_rows(first, "credits-shared", 25)
        assert sum(Decimal(str(r["cost"])) for r in rows if r["status"] == 200) == Decimal("0.25")

    def test_revocation_reaches_the_other_replica(self, replicas: list[GatewayProcess]) -> None:
        created = replicas[0].admin("POST", "/admin/keys", {"project": "rpm-shared"}, expect=201)
        assert _chat(replicas[1].url, created["key"]) == 200
        replicas[0].admin("DELETE", f"/admin/keys/{created['id']}", expect=200)
        time.sleep(0.2)  # pub/sub delivery between replicas
        assert _chat(replicas[1].url, created["key"]) == 401

    def test_kill_9_loses_nothing_and_counts_nothing_twice(
        self,
        replicas: list[GatewayProcess],
        scaleout_env: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        first, second = replicas
        project = first.admin(
            "POST", "/admin/projects", {"name": "kill9", "credit_enforced": True}, expect=201
        )
        first.admin("POST", f"/admin/projects/{project['id']}/credits", {"amount": "100"}, expect=201)
        key = first.admin("POST", "/admin/keys", {"project": "kill9"}, expect=201)["key"]
        calls: dict[str, list[tuple[int, str | None]]] = {first.url: [], second.url: []}
        clients_per_replica = 4

        def load(url: str, seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                calls[url].append(_chat_with_id(url, key))

        with ThreadPoolExecutor(2 * clients_per_replica) as pool:
            futures = [pool.submit(load, r.url, 3.0) for r in replicas for _ in range(clients_per_replica)]
            time.sleep(1.0)
            first.process.send_signal(signal.SIGKILL)
            for future in futures:
                future.result()
        statuses = {url: [status for status, _ in made] for url, made in calls.items()}
        assert statuses[second.url].count(200) > 0 and set(statuses[second.url]) == {200}  # kept serving

        restarted = start_gateway(first.data_dir, None, {**first.env}, port=first.port)
        replicas[0] = restarted
        answered = {url: {rid for status, rid in made if status == 200} for url, made in calls.items()}
        ok = len(answered[first.url]) + len(answered[second.url])
        rows = _wait_for_rows(second, "kill9", ok)
        settled = [r for r in rows if r["status"] == 200]
        ids = [r["request_id"] for r in rows]
        assert len(ids) == len(set(ids))
        settled_ids = {r["request_id"] for r in settled}
        assert answered[second.url] <= settled_ids  # the survivor lost nothing
        # The documented scale-out bound (docs/metering.md, "Loss bounds"): the dead replica may have
        # answered calls whose settlements were queued but not yet sent to Redis, those of its last round
        # trip, so at most one per client connection; they are charged zero times (the balance check
        # below). Calls cut off by the kill may have been settled already.
        assert len(answered[first.url] - settled_ids) <= clients_per_replica
        cut_off = statuses[first.url].count(0)
        assert len(settled_ids - answered[first.url] - answered[second.url]) <= cut_off
        charged = sum(Decimal(str(r["cost"])) for r in settled)
        assert charged == PRICE * len(settled)
        # Loss bound: calls in flight on the dead replica keep their credit holds until HOLD_SECONDS
        # pass; then the live balance is exactly what the ledger says was spent.
        time.sleep(HOLD_SECONDS + 1)
        balance = Decimal(second.admin("GET", f"/admin/projects/{project['id']}")["balance"])
        assert Decimal(100) - balance == charged


def _wait_for_rows(
    gateway: GatewayProcess, project: str, at_least: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows = _usage_rows(gateway, project)
    while len([r for r in rows if r["status"] == 200]) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = _usage_rows(gateway, project)
    return rows
