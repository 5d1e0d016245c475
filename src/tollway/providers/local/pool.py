"""``ModelPool``: loads local engines on first use and runs their blocking calls off the event loop.

    pool = ModelPool(max_memory_mb=1024)
    vectors = await pool.run("local:all-minilm-l6-v2", "embed", ["hello"])
    async for piece in pool.stream("local:smollm2-135m-instruct", "stream_chat", messages):
        ...

Bounds:
* per model, ``concurrency`` calls at once (default 1): an ``asyncio.Semaphore`` makes extra callers
  wait on the loop without occupying a worker thread, and a ``threading.BoundedSemaphore`` keeps the
  bound in the threads even when an awaiting caller is cancelled while its thread still runs;
* memory: each catalog entry carries an approximate resident size; before loading a model the pool
  unloads least-recently-used *idle* engines until the sum fits ``max_memory_mb``. Busy engines are
  never unloaded, so the bound is soft when every loaded engine is in use. Freed native memory may
  stay in the process allocator's free lists, so RSS can shrink less than the estimate.

Use one pool per event loop (its asyncio semaphores bind to the loop that first waits on them), and
consume streams inside ``contextlib.aclosing(...)`` so an abandoned stream releases its model at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tollway.errors import ModelNotFound
from tollway.providers.local.catalog import MODELS_BY_ID, LocalEngine, LocalModel

_ITEM, _ERROR, _DONE = "item", "error", "done"


@dataclass
class _Slot:
    model: LocalModel
    concurrency: int
    engine: LocalEngine | None = None
    active: int = 0
    last_used: float = 0.0
    thread_bound: threading.BoundedSemaphore = field(init=False)
    async_bound: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.thread_bound = threading.BoundedSemaphore(self.concurrency)
        self.async_bound = asyncio.Semaphore(self.concurrency)  # binds to the loop on first use


class ModelPool:
    """Lazily loaded local engines behind per-model concurrency and a global memory bound."""

    def __init__(
        self,
        catalog: Mapping[str, LocalModel] = MODELS_BY_ID,
        *,
        max_memory_mb: int = 1536,
        concurrency: int | Mapping[str, int] = 1,
        max_workers: int = 4,
        engine_options: Mapping[str, Mapping[str, Any]] | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.catalog = catalog
        self.max_memory_mb = max_memory_mb
        self._concurrency = concurrency
        self._engine_options = engine_options or {}
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers, thread_name_prefix="tollway-local")
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    # -- public API -------------------------------------------------------------------------
    async def run(self, model_id: str, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``engine.fn_name(*args, **kwargs)`` in the executor; loads the engine if needed."""
        slot = self._slot(model_id)
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, slot, fn_name, args, kwargs)
        async with slot.async_bound:
            return await loop.run_in_executor(self._executor, call)

    async def stream(
        self, model_id: str, fn_name: str, *args: Any, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        """Iterate a generator method in the executor; closing this iterator stops the generator."""
        slot = self._slot(model_id)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        produce = functools.partial(self._produce, slot, fn_name, args, kwargs, _sender(loop, queue), stop)
        async with slot.async_bound:
            producer = loop.run_in_executor(self._executor, produce)
            try:
                while True:
                    kind, value = await queue.get()
                    if kind == _DONE:
                        break
                    if kind == _ERROR:
                        raise value
                    yield value
            finally:
                stop.set()  # the producer checks it between items and closes the generator
                if not producer.done():
                    await asyncio.wait([producer])

    async def preload(self, model_ids: list[str]) -> None:
        """Load models ahead of traffic (e.g. at startup)."""
        for model_id in model_ids:
            await self.run(model_id, "load")

    def loaded_models(self) -> list[str]:
        with self._lock:
            return [mid for mid, s in self._slots.items() if s.engine is not None]

    def memory_in_use_mb(self) -> int:
        with self._lock:
            return self._loaded_mb()

    def evict(self, model_id: str) -> bool:
        """Unload an idle engine now; False if it is busy or not loaded."""
        with self._lock:
            slot = self._slots.get(model_id)
            if slot is None or slot.engine is None or slot.active:
                return False
            _unload(slot)
            return True

    def close(self) -> None:
        """Unload everything and stop the executor (if the pool created it)."""
        with self._lock:
            for slot in self._slots.values():
                if not slot.active:
                    _unload(slot)
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- worker side (runs in executor threads) ---------------------------------------------
    def _call(self, slot: _Slot, fn_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with slot.thread_bound:
            engine = self._acquire(slot)
            try:
                return getattr(engine, fn_name)(*args, **kwargs)
            finally:
                self._release(slot)

    def _produce(
        self,
        slot: _Slot,
        fn_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        send: Callable[[str, Any], None],
        stop: threading.Event,
    ) -> None:
        with slot.thread_bound:
            try:
                engine = self._acquire(slot)
            except BaseException as exc:  # reported to the consumer, which re-raises it
                send(_ERROR, exc)
                return
            try:
                _pump(getattr(engine, fn_name)(*args, **kwargs), send, stop)
            except BaseException as exc:
                send(_ERROR, exc)
            finally:
                self._release(slot)
                send(_DONE, None)

    def _acquire(self, slot: _Slot) -> LocalEngine:
        with self._lock:
            if slot.engine is None:
                self._make_room(slot.model.memory_mb)
                options = self._engine_options.get(slot.model.id, {})
                slot.engine = slot.model.create_engine(**options)
            slot.active += 1
            slot.last_used = time.monotonic()
            engine = slot.engine
        try:
            engine.load()  # outside the pool lock: loading one model must not stall the others
        except BaseException:
            self._release(slot)
            raise
        return engine

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            slot.active -= 1
            slot.last_used = time.monotonic()

    def _make_room(self, needed_mb: int) -> None:
        """Unload idle engines, least recently used first, until ``needed_mb`` fits. Holds _lock."""
        idle = sorted(
            (s for s in self._slots.values() if s.engine is not None and not s.active),
            key=lambda s: s.last_used,
        )
        for slot in idle:
            if self._loaded_mb() + needed_mb <= self.max_memory_mb:
                break
            _unload(slot)

    def _loaded_mb(self) -> int:
        return sum(s.model.memory_mb for s in self._slots.values() if s.engine is not None)

    def _slot(self, model_id: str) -> _Slot:
        with self._lock:
            slot = self._slots.get(model_id)
            if slot is None:
                model = self.catalog.get(model_id)
                if model is None:
                    raise ModelNotFound(f"no local model {model_id!r}", param="model")
                slot = self._slots[model_id] = _Slot(model, self._concurrency_for(model_id))
            return slot

    def _concurrency_for(self, model_id: str) -> int:
        if isinstance(self._concurrency, int):
            return self._concurrency
        return self._concurrency.get(model_id, 1)


def _pump(generator: Iterator[Any], send: Callable[[str, Any], None], stop: threading.Event) -> None:
    """Forward items until exhausted or stopped; close() runs the generator's cleanup in this thread."""
    try:
        for item in generator:
            if stop.is_set():
                break
            send(_ITEM, item)
    finally:
        close = getattr(generator, "close", None)
        if close is not None:
            close()


def _sender(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[tuple[str, Any]]
) -> Callable[[str, Any], None]:
    def send(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while the producer ran: nobody listens
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    return send


def _unload(slot: _Slot) -> None:
    close = getattr(slot.engine, "close", None)
    if callable(close):
        close()
    slot.engine = None
