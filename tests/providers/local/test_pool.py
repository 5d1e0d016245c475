from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tollway.errors import ModelNotFound
from tollway.providers.local.catalog import MODELS_BY_ID, LocalModel
from tollway.providers.local.pool import ModelPool


class SlowEngine:
    """Records how many calls overlap; ``work`` sleeps in the worker thread."""

    created = 0

    def __init__(self) -> None:
        SlowEngine.created += 1
        self.loaded = False
        self.running = 0
        self.peak = 0
        self.closed_streams = 0
        self._lock = threading.Lock()

    def load(self) -> None:
        self.loaded = True

    def work(self, seconds: float) -> str:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(seconds)
        with self._lock:
            self.running -= 1
        return "done"

    def count(self, n: int) -> Iterator[int]:
        try:
            for i in range(n):
                time.sleep(0.005)
                yield i
        finally:
            self.closed_streams += 1

    def fail(self) -> None:
        raise ValueError("boom")


def _fake(model_id: str, memory_mb: int = 100) -> LocalModel:
    base = MODELS_BY_ID["local:lanczos"]
    return replace(base, id=model_id, engine=f"{__name__}:SlowEngine", requires=(), memory_mb=memory_mb)


def _pool(**kwargs: Any) -> ModelPool:
    catalog = {m.id: m for m in (_fake("fake:a"), _fake("fake:b"), _fake("fake:c"))}
    return ModelPool(catalog, **kwargs)


async def test_per_model_concurrency_bound_is_respected() -> None:
    pool = _pool(concurrency={"fake:a": 2}, max_workers=6)
    results = await asyncio.gather(*(pool.run("fake:a", "work", 0.05) for _ in range(6)))
    engine: Any = pool._slots["fake:a"].engine
    assert results == ["done"] * 6
    assert engine.peak == 2
    await asyncio.gather(*(pool.run("fake:b", "work", 0.02) for _ in range(3)))
    assert pool._slots["fake:b"].engine.peak == 1  # type: ignore[union-attr]
    pool.close()


async def test_least_recently_used_idle_engine_is_evicted() -> None:
    pool = _pool(max_memory_mb=250)
    await pool.run("fake:a", "work", 0)
    await pool.run("fake:b", "work", 0)
    await pool.run("fake:a", "work", 0)  # b is now the least recently used
    await pool.run("fake:c", "work", 0)
    assert sorted(pool.loaded_models()) == ["fake:a", "fake:c"]
    assert pool.memory_in_use_mb() == 200
    pool.close()


async def test_busy_engines_are_not_evicted() -> None:
    pool = _pool(max_memory_mb=150, max_workers=3)
    busy = asyncio.create_task(pool.run("fake:a", "work", 0.2))
    await asyncio.sleep(0.05)
    await pool.run("fake:b", "work", 0)
    assert "fake:a" in pool.loaded_models()
    assert await busy == "done"
    pool.close()


async def test_errors_propagate_and_unknown_models_are_404() -> None:
    pool = _pool()
    with pytest.raises(ValueError, match="boom"):
        await pool.run("fake:a", "fail")
    with pytest.raises(ModelNotFound):
        await pool.run("fake:nope", "work", 0)
    assert await pool.run("fake:a", "work", 0) == "done"  # the slot was released
    pool.close()


async def test_stream_bridges_a_generator_and_stops_it_when_abandoned() -> None:
    pool = _pool()
    items = [i async for i in pool.stream("fake:a", "count", 5)]
    assert items == [0, 1, 2, 3, 4]
    stream = pool.stream("fake:a", "count", 1000)
    async for item in stream:
        if item == 2:
            break
    await stream.aclose()
    engine: Any = pool._slots["fake:a"].engine
    assert engine.closed_streams == 2
    assert await pool.run("fake:a", "work", 0) == "done"
    pool.close()


async def test_transcription_does_not_block_the_event_loop(
    speaker: Any, transcriber: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model runs on the pool's threads, and the loop goes on serving other tasks meanwhile. Checked
    by where the call ran and by a task that ran during it, not by timing: on a loaded 2-core machine the
    model's own threads can starve the loop's thread for a while without anything blocking it."""
    from tollway.providers.local import _audio

    audio = speaker.render("The event loop keeps running while the model transcribes this sentence.")
    wav, _ = _audio.encode(audio, 24000, "wav")
    pool = ModelPool(engine_options={})
    pool._slot("local:whisper-tiny-en").engine = transcriber  # reuse the session's loaded model
    ran_on: list[int] = []
    transcribe = transcriber.transcribe

    def recorded(*args: Any, **kwargs: Any) -> Any:
        ran_on.append(threading.get_ident())
        return transcribe(*args, **kwargs)

    monkeypatch.setattr(transcriber, "transcribe", recorded)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    result = await pool.run("local:whisper-tiny-en", "transcribe", wav, "a.wav")
    ticks_during_call = ticks  # read before this coroutine yields again
    task.cancel()
    assert "event loop" in result.text.lower()
    assert ran_on and ran_on[0] != threading.get_ident()  # not on the loop's thread
    assert ticks_during_call > 0  # the loop ran another task while the model worked
    pool.close()


async def test_chat_stream_through_the_pool(chat_model: Any) -> None:
    from tollway.providers.local.chat import Generation

    pool = ModelPool()
    pool._slot("local:smollm2-135m-instruct").engine = chat_model
    question = [{"role": "user", "content": "What is the capital of France?"}]
    items = [
        x async for x in pool.stream("local:smollm2-135m-instruct", "stream_chat", question, temperature=0.0)
    ]
    assert isinstance(items[-1], Generation) and "Paris" in items[-1].text
    abandoned = pool.stream("local:smollm2-135m-instruct", "stream_chat", question, max_tokens=64)
    await abandoned.__anext__()
    await abandoned.aclose()
    answer = await asyncio.wait_for(
        pool.run("local:smollm2-135m-instruct", "chat", question, temperature=0.0), timeout=10
    )
    assert "Paris" in answer.text
    pool.close()


async def test_cancelling_the_consumer_stops_the_generator() -> None:
    pool = _pool()
    received: list[int] = []
    three_items = asyncio.Event()

    async def consume() -> None:
        async for item in pool.stream("fake:a", "count", 10_000):
            received.append(item)
            if len(received) == 3:
                three_items.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(three_items.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    engine: Any = pool._slots["fake:a"].engine
    assert engine.closed_streams == 1
    assert len(received) < 10_000
    assert await asyncio.wait_for(pool.run("fake:a", "work", 0), timeout=1) == "done"
    pool.close()
