"""The offline `local` provider, end to end: a real `tollway serve` with no config file and no network,
driven with the official `openai` SDK (and httpx for Tollway's extensions), running the packaged models."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests.gateway_process import GatewayProcess, running_gateway

pytest.importorskip("onnxruntime")
pytest.importorskip("faster_whisper")
pytest.importorskip("hibari")
pytest.importorskip("llama_cpp")
pytest.importorskip("profanity_check")
PIL_Image = pytest.importorskip("PIL.Image")

LOCAL_ENV = {"TOLLWAY_LOCAL_MODELS": "true"}
EMBEDDER = "local:all-minilm-l6-v2"
CHAT = "local:smollm2-135m-instruct"
WHISPER = "local:whisper-tiny-en"
SPEAKER = "local:hibari"
LOCAL_IDS = {EMBEDDER, CHAT, WHISPER, SPEAKER, "local:profanity-check", "local:lanczos"}
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
FRANCE: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with running_gateway(tmp_path_factory.mktemp("local"), None, LOCAL_ENV) as process:
        yield process


@pytest.fixture(scope="module")
def key(gateway: GatewayProcess) -> str:
    return gateway.create_key("local")


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def http(gateway: GatewayProcess, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
        yield c


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _image(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    PIL_Image.new("RGB", size, (200, 30, 90)).save(out, format=fmt)
    return out.getvalue()


# -- catalog -------------------------------------------------------------------------------------
def test_models_endpoint_and_cli_list_the_local_models(
    client: openai.OpenAI, gateway: GatewayProcess
) -> None:
    listed = {m.id: m for m in client.models.list().data}
    assert set(listed) >= LOCAL_IDS
    assert (listed[EMBEDDER].model_extra or {})["capabilities"] == ["embeddings", "rerank"]
    cli = subprocess.run(
        [sys.executable, "-m", "tollway", "models", "--json"],
        env=gateway.env,  # no TOLLWAY_CONFIG: the same config-less setup as the server
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {row["id"]: row["status"] for row in json.loads(cli.stdout)}
    assert {rows[model_id] for model_id in LOCAL_IDS} == {"installed"}


# -- embeddings and rerank -------------------------------------------------------------------------
def test_paraphrases_embed_closer_than_unrelated_sentences(client: openai.OpenAI) -> None:
    texts = ["A man is playing a guitar.", "Someone strums a guitar.", "The stock market fell sharply today."]
    floats = client.embeddings.create(model=EMBEDDER, input=texts, encoding_format="float")
    vectors = [d.embedding for d in floats.data]
    assert len(vectors[0]) == 384
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2]) + 0.3
    assert floats.usage.prompt_tokens > 0
    encoded = client.embeddings.create(model=EMBEDDER, input=texts)  # the SDK asks for base64
    assert encoded.data[1].embedding == pytest.approx(vectors[1], abs=1e-6)


def test_embeddings_refuse_what_the_model_cannot_do(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model=EMBEDDER, input="hi", dimensions=256)
    with pytest.raises(openai.BadRequestError, match="token arrays"):
        client.embeddings.create(model=EMBEDDER, input=[[1, 2, 3]])


def test_rerank_puts_the_relevant_document_first(http: httpx.Client) -> None:
    paris = "Paris is the capital and largest city of France."
    documents: list[str | dict[str, str]] = [
        "Bananas are a good source of potassium.",
        {"text": paris},
        "The Great Wall of China is thousands of kilometres long.",
    ]
    body = {"model": EMBEDDER, "query": "What is the capital of France?", "documents": documents}
    answer = http.post("/v1/rerank", json={**body, "top_n": 2, "return_documents": True}).json()
    assert [r["index"] for r in answer["results"]][:1] == [1]
    assert len(answer["results"]) == 2
    assert answer["results"][0]["document"] == {"text": paris}
    assert answer["results"][0]["relevance_score"] >= answer["results"][1]["relevance_score"]
    assert answer["model"] == EMBEDDER and answer["usage"]["total_tokens"] > 0
    plain = http.post("/v1/rerank", json=body).json()
    assert len(plain["results"]) == 3 and "document" not in plain["results"][0]
    bad = http.post("/v1/rerank", json={**body, "documents": [3]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "documents[0]"


# -- moderation ----------------------------------------------------------------------------------
def test_moderation_flags_an_insult_and_passes_a_greeting(client: openai.OpenAI) -> None:
    answer = client.moderations.create(
        input=["You are a stupid worthless idiot.", "Hello, nice to meet you!"]
    )
    assert answer.model == "local:profanity-check"  # no model named: the local default
    insult, greeting = answer.results
    assert insult.flagged and insult.categories.harassment
    assert not greeting.flagged
    extra = insult.model_extra or {}
    assert extra["evaluated_categories"] == ["harassment"]
    assert set(insult.category_scores.model_dump(exclude_none=True)) == {"harassment"}  # nothing invented


# -- speech and transcription --------------------------------------------------------------------
def test_text_to_speech_then_speech_to_text_recovers_the_sentence(client: openai.OpenAI) -> None:
    speech = client.audio.speech.create(model=SPEAKER, voice="alloy", input=SENTENCE, response_format="mp3")
    assert speech.response.headers["content-type"] == "audio/mpeg"
    text = client.audio.transcriptions.create(model=WHISPER, file=("speech.mp3", speech.content))
    assert word_error_rate(SENTENCE, text.text) <= 0.2, text.text
    verbose = client.audio.transcriptions.create(
        model=WHISPER,
        file=("speech.mp3", speech.content),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.language == "english" and verbose.duration > 1
    assert verbose.segments and verbose.words and verbose.words[0].end > verbose.words[0].start
    srt = client.audio.transcriptions.create(
        model=WHISPER, file=("speech.mp3", speech.content), response_format="srt"
    )
    assert "00:00:00,000 -->" in str(srt)


@pytest.mark.parametrize(
    ("fmt", "filename", "content_type"),
    [
        ("wav", "a.wav", "audio/wav"),
        ("flac", "a.flac", "audio/flac"),
        ("opus", "a.ogg", "audio/opus"),
        ("aac", "a.aac", "audio/aac"),
    ],
)
def test_speech_formats_round_trip(client: openai.OpenAI, fmt: str, filename: str, content_type: str) -> None:
    speech = client.audio.speech.create(model=SPEAKER, voice="heart", input=SENTENCE, response_format=fmt)  # type: ignore[arg-type]
    assert speech.response.headers["content-type"] == content_type
    text = client.audio.transcriptions.create(
        model=WHISPER, file=(filename, speech.content), response_format="text"
    )
    assert word_error_rate(SENTENCE, str(text)) <= 0.2, text


def test_speech_limits_and_voices(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError, match="4096"):
        client.audio.speech.create(model=SPEAKER, voice="alloy", input="a" * 4097)
    with pytest.raises(openai.BadRequestError, match="speed"):
        client.audio.speech.create(model=SPEAKER, voice="alloy", input="hi", speed=5.0)
    voices = http.get("/v1/audio/voices").json()["data"]
    assert any(
        v["id"] == "heart" and v["model"] == SPEAKER and "alloy" in v["openai_aliases"] for v in voices
    )


def test_oversized_upload_is_413_in_openai_shape(http: httpx.Client) -> None:
    files = {"file": ("big.wav", b"\0" * (25 * 1024 * 1024 + 1), "audio/wav")}
    response = http.post("/v1/audio/transcriptions", data={"model": WHISPER}, files=files)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks translations deprecated
def test_translation_explains_the_english_only_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="English only"):
        client.audio.translations.create(model=WHISPER, file=("a.wav", b"RIFF"))


def test_long_transcription_does_not_stall_health(
    client: openai.OpenAI, gateway: GatewayProcess, key: str, tmp_path: Path
) -> None:
    pcm = client.audio.speech.create(model=SPEAKER, voice="alloy", input=SENTENCE * 3, response_format="pcm")
    audio = tmp_path / "long.wav"
    with wave.open(str(audio), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes(pcm.content * 8)  # about two minutes of speech
    # The upload runs in another process: a client thread here would compete for this process's GIL
    # and the probe would measure the test, not the server.
    uploader = subprocess.Popen([sys.executable, "-c", _UPLOAD, gateway.url, key, str(audio)])
    latencies = []
    with httpx.Client(base_url=gateway.url, timeout=5) as probe:
        while uploader.poll() is None:
            start = time.perf_counter()
            assert probe.get("/health").status_code == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.05)
    assert uploader.returncode == 0
    assert len(latencies) >= 10, "the transcription finished too quickly to measure anything"
    assert max(latencies) < 0.5, latencies


_UPLOAD = """
import sys, httpx
url, key, path = sys.argv[1:]
with open(path, "rb") as audio:
    response = httpx.post(
        url + "/v1/audio/transcriptions",
        headers={"Authorization": "Bearer " + key},
        data={"model": "local:whisper-tiny-en"},
        files={"file": ("long.wav", audio, "audio/wav")},
        timeout=120,
    )
assert response.status_code == 200 and "fox" in response.json()["text"], response.text
"""


# -- chat and completions ------------------------------------------------------------------------
def test_chat_answers_paris_with_usage_and_zero_cost(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=FRANCE, temperature=0)
    completion = raw.parse()
    assert "Paris" in (completion.choices[0].message.content or "")
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert raw.headers["x-tollway-backend"] == "local"
    assert float(raw.headers["x-tollway-cost"]) == 0


def test_chat_streams_token_by_token_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT,
        messages=FRANCE,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3 and "Paris" in "".join(pieces)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_abandoned_stream_frees_the_model(http: httpx.Client, client: openai.OpenAI) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Tell me a long story."}], "stream": True}
    with http.stream("POST", "/v1/chat/completions", json={**body, "max_tokens": 1000}) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))  # then hang up mid-answer
    start = time.monotonic()
    answer = client.chat.completions.create(model=CHAT, messages=FRANCE, max_tokens=5)
    assert answer.choices[0].message.content
    assert time.monotonic() - start < 5  # not queued behind the abandoned 1000-token generation


def test_same_seed_same_text_and_limits(client: openai.OpenAI) -> None:
    def ask(seed: int) -> str:
        completion = client.chat.completions.create(
            model=CHAT,
            messages=[{"role": "user", "content": "Write a sentence about the sea."}],
            seed=seed,
            temperature=1.0,
            max_tokens=24,
        )
        assert completion.usage is not None and completion.usage.completion_tokens <= 24
        return completion.choices[0].message.content or ""

    assert ask(7) == ask(7)
    stopped = client.completions.create(
        model=CHAT, prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=["7"]
    )
    assert "7" not in stopped.choices[0].text
    prompt = "The capital of France is"
    chunks = client.completions.create(
        model=CHAT, prompt=prompt, max_tokens=5, temperature=0, stream=True, echo=True
    )
    streamed = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert streamed.startswith(prompt) and "Paris" in streamed[len(prompt) :]


def test_chat_refuses_images_and_tools(client: openai.OpenAI) -> None:
    image: ChatCompletionMessageParam = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
    }
    with pytest.raises(openai.BadRequestError, match="image_url"):
        client.chat.completions.create(model=CHAT, messages=[image])
    tool: ChatCompletionFunctionToolParam = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object"}},
    }
    with pytest.raises(openai.BadRequestError, match="tools"):
        client.chat.completions.create(model=CHAT, messages=FRANCE, tools=[tool])

    for part in (
        {"type": "text", "text": ["hi"]},
        {"type": ["text"], "text": "hi"},
        {"type": "text", "text": None},
    ):
        # wrong kinds inside a text part: a 400 naming it, never the engine's crash
        answer = _post_chat(client, [{"role": "user", "content": [part]}])
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"].startswith("messages[0].content")


def _post_chat(client: openai.OpenAI, messages: list[dict[str, object]]) -> httpx.Response:
    return httpx.post(
        f"{client.base_url}chat/completions",
        json={"model": CHAT, "messages": messages, "max_tokens": 2},
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=60,
    )


# -- images --------------------------------------------------------------------------------------
def test_upscale_keeps_the_format_and_scales_the_size(http: httpx.Client) -> None:
    png = http.post(
        "/v1/images/upscale", files={"image": ("a.png", _image("PNG"), "image/png")}, data={"factor": "2"}
    )
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert PIL_Image.open(io.BytesIO(png.content)).size == (80, 60)
    jpeg = http.post(
        "/v1/images/upscale", json={"image": base64.b64encode(_image("JPEG")).decode(), "factor": 4}
    )
    assert jpeg.headers["content-type"] == "image/jpeg"
    picture = PIL_Image.open(io.BytesIO(jpeg.content))
    assert (picture.format, picture.size) == ("JPEG", (160, 120))
    bad = http.post(
        "/v1/images/upscale", json={"image": base64.b64encode(_image("PNG")).decode(), "factor": 3}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "factor"


def test_text_to_image_is_a_400_that_says_how_to_add_a_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="image_generation") as info:
        client.images.generate(model="dall-e-3", prompt="a lighthouse at dusk")
    assert "capabilities: [image_generation]" in str(info.value)


def test_local_calls_are_metered_at_zero_cost(gateway: GatewayProcess, http: httpx.Client) -> None:
    # One call of each local operation, made here: the test does not lean on what the others wrote.
    speech = http.post("/v1/audio/speech", json={"model": SPEAKER, "voice": "alloy", "input": "Hello there."})
    calls = {
        "embeddings": http.post("/v1/embeddings", json={"model": EMBEDDER, "input": SENTENCE}),
        "rerank": http.post("/v1/rerank", json={"model": EMBEDDER, "query": "fox", "documents": [SENTENCE]}),
        "moderation": http.post("/v1/moderations", json={"input": "Hello, nice to meet you!"}),
        "speech": speech,
        "transcription": http.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.mp3", speech.content, "audio/mpeg")},
            data={"model": WHISPER},
        ),
        "chat": http.post("/v1/chat/completions", json={"model": CHAT, "messages": FRANCE, "max_tokens": 4}),
        "upscale": http.post("/v1/images/upscale", files={"image": ("a.png", _image("PNG"), "image/png")}),
    }
    assert {op: answer.status_code for op, answer in calls.items()} == dict.fromkeys(calls, 200)
    ids = {answer.headers["x-tollway-request-id"]: op for op, answer in calls.items()}
    rows = gateway.admin("GET", "/admin/usage?project=local&limit=10000", expect=200)["data"]
    mine = {row["request_id"]: row for row in rows if row["request_id"] in ids}
    assert {ids[rid]: row["operation"] for rid, row in mine.items()} == {op: op for op in calls}
    assert all(row["status"] == 200 and Decimal(str(row["cost"])) == 0 for row in mine.values())
