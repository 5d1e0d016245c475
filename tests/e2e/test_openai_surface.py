"""The OpenAI-compatible surface, end to end: the official `openai` SDK -> a real `tollway serve` process ->
the OpenAI simulator."""

from __future__ import annotations

import base64
import struct
import time

import httpx
import openai
import pytest

from tests.gateway_process import GatewayProcess
from tollway.simulators.runner import SimulatorThread

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TINY_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def key(gateway: GatewayProcess) -> str:
    return gateway.create_key("e2e")


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def test_models_list_and_get(client: openai.OpenAI) -> None:
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert "upstream:gpt-4o-mini" in ids and "upstream:text-embedding-3-small" in ids
    chat = next(m for m in models.data if m.id == "upstream:gpt-4o-mini")
    extra = chat.model_extra or {}
    assert extra["capabilities"] == ["chat", "tools", "vision"]
    assert extra["pricing"] == {"input_per_mtok": "0.15", "output_per_mtok": "0.6"}
    assert client.models.retrieve("gpt-4o-mini").id == "upstream:gpt-4o-mini"  # by alias
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert "GET /v1/models" in str(info.value)


def test_chat_with_usage_and_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello there"}],
        extra_headers={"X-Request-ID": "client-req-1"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: Hello there"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert raw.headers["x-request-id"] == "client-req-1"
    assert raw.headers["x-tollway-request-id"].startswith("req_")
    assert raw.headers["x-tollway-model"] == "upstream:gpt-4o-mini"
    assert raw.headers["x-tollway-backend"] == "upstream"
    expected = (completion.usage.prompt_tokens * 0.15 + completion.usage.completion_tokens * 0.60) / 1e6
    assert float(raw.headers["x-tollway-cost"]) == pytest.approx(expected)


def test_prefix_routing_and_full_id(client: openai.OpenAI) -> None:
    for name in ("upstream:gpt-4o-mini", "gpt-4o"):  # full id; a bare name routed by the "gpt-" prefix
        completion = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content == "Echo: hi"


def test_stream_matches_unstreamed(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Tell me about streaming in detail please"}]
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_stream_without_include_usage_hides_usage_chunk(gateway: GatewayProcess, key: str) -> None:
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "one two three"}],
    }
    with httpx.stream(
        "POST", gateway.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = [line for line in raw.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    assert all('"choices":[]' not in event for event in events)


def test_tools_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type,list-item]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type,list-item]
    assert "sunny, 21C" in (second.choices[0].message.content or "")


def test_streamed_tool_call_arguments_arrive_whole(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
    )
    arguments = ""
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            arguments += delta.function.arguments or "" if delta.function else ""
    assert '"city"' in arguments


def test_image_parts_and_json_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": TINY_PNG}},
                ],
            }
        ],
    )
    assert "1 image" in (completion.choices[0].message.content or "")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    structured = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "answer in JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}},
        n=2,
        seed=7,
        stop=["zzz"],
        logprobs=True,
    )
    assert len(structured.choices) == 2
    assert '"answer"' in (structured.choices[0].message.content or "")


def test_unknown_fields_pass_through(
    gateway: GatewayProcess, client: openai.OpenAI, openai_sim: SimulatorThread
) -> None:
    # The simulator is as strict as OpenAI: it refuses unknown fields, so the upstream's 400 comes back as is.
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], extra_body={"not_a_field": 1}
        )
    assert "not_a_field" in str(info.value)
    last = httpx.get(openai_sim.url.removesuffix("/v1") + "/_sim/requests").json()["data"][-1]
    assert last["body"]["not_a_field"] == 1


def test_legacy_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model="upstream:gpt-3.5-turbo-instruct", prompt="Say hello", max_tokens=5
    )
    assert completion.choices[0].text and completion.usage is not None
    stream = client.completions.create(
        model="upstream:gpt-3.5-turbo-instruct", prompt="Say hello", max_tokens=5, stream=True
    )
    assert "".join(c.choices[0].text for c in stream if c.choices) == completion.choices[0].text


def test_embeddings_float_base64_dimensions(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="upstream:text-embedding-3-small", input=["hello", "world"])
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 1536
    assert floats.usage.prompt_tokens > 0
    small = client.embeddings.create(model="upstream:text-embedding-3-small", input="hello", dimensions=64)
    assert len(small.data[0].embedding) == 64
    response = httpx.post(
        str(client.base_url) + "embeddings",
        json={"model": "upstream:text-embedding-3-small", "input": "hello", "encoding_format": "base64"},
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    encoded = response.json()["data"][0]["embedding"]
    decoded = struct.unpack("<1536f", base64.b64decode(encoded))
    assert decoded[0] == pytest.approx(floats.data[0].embedding[0], rel=1e-6)


def test_capability_mismatch_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="upstream:gpt-4o-mini", input="x")
    assert "upstream:text-embedding-3-small" in str(info.value)


def test_bad_requests_are_400_in_openai_shape(gateway: GatewayProcess, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    url = gateway.url + "/v1/chat/completions"
    malformed = httpx.post(url, content=b"{not json", headers=headers)
    assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "invalid_request_error"
    wrong_type = httpx.post(url, json={"model": "gpt-4o-mini", "messages": "hi"}, headers=headers)
    assert wrong_type.status_code == 400 and wrong_type.json()["error"]["param"] == "messages"
    bad_max = httpx.post(
        url,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": "5"},
        headers=headers,
    )
    assert bad_max.status_code == 400 and bad_max.json()["error"]["param"] == "max_tokens"
    for role in (["user"], {"a": 1}):  # not hashable: once a 500
        bad_role = httpx.post(
            url, json={"model": "gpt-4o-mini", "messages": [{"role": role, "content": "x"}]}, headers=headers
        )
        assert bad_role.status_code == 400 and bad_role.json()["error"]["param"] == "messages[0].role"
    huge = httpx.post(url, content=b'{"x":"' + b"a" * (33 * 1024 * 1024) + b'"}', headers=headers)
    assert huge.status_code == 413 and "error" in huge.json()


def test_authentication_and_permissions(gateway: GatewayProcess, client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=client.base_url, api_key="tw-nothere-xxxxxxxx", max_retries=0
        ).chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,  # type: ignore[arg-type]
        )
    missing = httpx.post(
        gateway.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": messages}
    )
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"

    limited = gateway.create_key("e2e", models=["upstream:text-embedding-3-small"])
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(base_url=client.base_url, api_key=limited, max_retries=0).chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,  # type: ignore[arg-type]
        )
    admin_only = gateway.create_key("e2e", scopes=["admin"])
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(base_url=client.base_url, api_key=admin_only, max_retries=0).chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,  # type: ignore[arg-type]
        )


def test_revocation_takes_effect_on_next_request(gateway: GatewayProcess, client: openai.OpenAI) -> None:
    created = gateway.admin("POST", "/admin/keys", {"project": "e2e", "name": "short-lived"}, expect=201)
    victim = openai.OpenAI(base_url=client.base_url, api_key=created["key"], max_retries=0)
    victim.models.list()
    gateway.admin("DELETE", f"/admin/keys/{created['id']}", expect=200)
    with pytest.raises(openai.AuthenticationError):
        victim.models.list()
    listed = gateway.admin("GET", "/admin/keys")["data"]
    shown = next(k for k in listed if k["id"] == created["id"])
    assert shown["revoked_at"] and "key" not in shown and shown["prefix"].startswith("tw-")


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="mystery-1", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("fail", "exception", "status"),
    [
        ("400", openai.BadRequestError, 400),
        ("429", openai.RateLimitError, 429),
        ("500", openai.InternalServerError, 502),
        ("503", openai.InternalServerError, 503),
        ("504", openai.InternalServerError, 504),
    ],
)
def test_upstream_failures(
    client: openai.OpenAI, fail: str, exception: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(exception) as info:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-sim-fail": fail},
        )
    assert info.value.status_code == status
    if status >= 500:
        assert "upstream" in info.value.message  # names the backend


def test_unreachable_upstream_is_503_naming_backend(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.gateway_process import free_port, openai_config, running_gateway

    dead = f"http://127.0.0.1:{free_port()}/v1"
    with running_gateway(tmp_path_factory.mktemp("dead"), openai_config(dead)) as gw:
        key = gw.create_key("p")
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 503 and "'upstream'" in info.value.message


def test_mid_stream_failure_ends_with_error_event(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "a long answer with many words in it"}],
        stream=True,
        extra_headers={"x-sim-fail-after-chunks": "2", "x-sim-fail-mode": "close"},
    )
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "upstream" in str(info.value)


def test_client_disconnect_cancels_upstream(
    gateway: GatewayProcess, key: str, openai_sim: SimulatorThread
) -> None:
    stats_url = openai_sim.url.removesuffix("/v1") + "/_sim/stats"
    before = httpx.get(stats_url).json()["disconnects_observed"]
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hang"}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gateway.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}", "x-sim-hang": "1"},
            timeout=1.0,
        )
    deadline = time.monotonic() + 5
    while httpx.get(stats_url).json()["disconnects_observed"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(stats_url).json()["disconnects_observed"] > before


def test_health_and_ready(gateway: GatewayProcess) -> None:
    health = httpx.get(gateway.url + "/health").json()
    assert health["status"] == "ok" and health["checks"]["database"] == "ok"
    assert httpx.get(gateway.url + "/ready").status_code == 200


def test_image_generation_routes_to_a_configured_upstream(
    gateway: GatewayProcess, client: openai.OpenAI
) -> None:
    raw = client.images.with_raw_response.generate(
        model="upstream:dall-e-3", prompt="a lighthouse at dusk", n=2, response_format="b64_json"
    )
    images = raw.parse()
    assert len(images.data or []) == 2 and base64.b64decode(images.data[0].b64_json or "")[:4] == b"\x89PNG"
    assert raw.headers["x-tollway-backend"] == "upstream"
    assert float(raw.headers["x-tollway-cost"]) == pytest.approx(0.08)  # 2 images at $0.04


def test_prometheus_metrics_count_calls(gateway: GatewayProcess, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "count me"}])
    text = httpx.get(gateway.url + "/metrics").text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("tollway_calls_total{") and 'status="200"' in row and 'operation="chat"' in row
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1
    assert "tollway_call_duration_seconds_bucket" in text and "tollway_tokens_total" in text


def test_json_with_curls_default_content_type_is_accepted(gateway: GatewayProcess, key: str) -> None:
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "from curl"}]}'
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-www-form-urlencoded"}
    answer = httpx.post(gateway.url + "/v1/chat/completions", content=body, headers=headers)
    assert (
        answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "Echo: from curl"
    )
    not_json = httpx.post(gateway.url + "/v1/chat/completions", content=b"model=gpt-4o-mini", headers=headers)
    assert (
        not_json.status_code == 400
        and "Content-Type: application/json" in not_json.json()["error"]["message"]
    )
    upload = httpx.post(
        gateway.url + "/v1/chat/completions", files={"f": b"x"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert upload.status_code == 415 and upload.json()["error"]["code"] == "unsupported_media_type"
    shouted = httpx.post(  # media types are case-insensitive
        gateway.url + "/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "Multipart/Form-Data; boundary=x"},
    )
    assert shouted.status_code == 415 and "'multipart/form-data'" in shouted.json()["error"]["message"]
    for route in ("/v1/audio/transcriptions", "/v1/images/upscale"):  # a part with a broken header
        broken = httpx.post(
            gateway.url + route,
            content=b"--x\r\nbroken\r\n\r\nbody\r\n--x--\r\n",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "multipart/form-data; boundary=x"},
        )
        assert broken.status_code == 400, broken.text
        assert "multipart body could not be parsed" in broken.json()["error"]["message"]


def test_audio_over_an_openai_compatible_upstream(gateway: GatewayProcess, client: openai.OpenAI) -> None:
    upload = ("clip.wav", b"RIFF" + b"\x00" * 31_996, "audio/wav")  # 32,000 bytes: 2 s to the simulator
    raw = client.audio.transcriptions.with_raw_response.create(model="upstream:whisper-1", file=upload)
    assert raw.parse().text == "transcribe of clip.wav (32000 bytes)"
    assert float(raw.headers["x-tollway-cost"]) == pytest.approx(0.0002)  # 2 s at $0.0001
    # The SDK marks audio.translations deprecated; the route is still OpenAI's, so call it over HTTP.
    text = httpx.post(
        gateway.url + "/v1/audio/translations",
        data={"model": "upstream:whisper-1", "response_format": "text"},
        files={"file": upload},
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    assert text.status_code == 200 and text.text.startswith("translate of clip.wav")
    speech = client.audio.speech.with_raw_response.create(
        model="upstream:tts-1", voice="alloy", input="Hello there"
    )
    assert speech.headers["content-type"] == "audio/mpeg" and speech.content.startswith(b"mp3")
    assert float(speech.headers["x-tollway-cost"]) == pytest.approx(11 * 0.000015)
