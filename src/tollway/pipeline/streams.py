"""A provider stream wrapped so that the call is settled exactly once, however the stream ends:
finished, failed upstream, or abandoned by a caller who disconnected."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from tollway.errors import TollwayError
from tollway.types import ChatStream, Usage

Settle = Callable[[Usage, int, str | None], Awaitable[None]]
# Usage of a stream that reported none: (the blocks seen, whether the stream completed) -> Usage.
Fallback = Callable[[list[bytes], bool], Awaitable[Usage]]


class MeteredStream:
    """Yields the provider's blocks; settles with the stream's own usage (or a count when it has none)."""

    def __init__(
        self, inner: ChatStream, settle: Settle, on_first_block: Callable[[], None], fallback: Fallback
    ):
        self.format = inner.format
        self._inner = inner
        self._settle = settle
        self._on_first_block = on_first_block
        self._fallback = fallback
        self._blocks: list[bytes] = []  # kept only until usage is known, for the fallback count
        self._settled = False
        self._started = False

    @property
    def usage(self) -> Usage | None:
        return self._inner.usage

    @property
    def complete(self) -> bool:
        """The provider's last event is in: what is still to come is the end of the answer."""
        return self._inner.complete

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            async for block in self._inner:
                if not self._started:
                    self._started = True
                    self._on_first_block()
                if self._inner.usage is None:
                    self._blocks.append(block)
                yield block
        except TollwayError as exc:
            await self._finish(exc.http_status, exc.error_code)
            raise
        await self._finish(200, None)

    async def aclose(self) -> None:
        """Ends the stream early (the caller went away): close the upstream and settle what was used."""
        if not self._settled:
            await self._inner.aclose()
            await self._finish(499, "client_disconnected")

    async def _finish(self, status: int, error_code: str | None) -> None:
        if self._settled:
            return
        self._settled = True
        usage = self._inner.usage or await self._fallback(self._blocks, status == 200)
        self._blocks = []
        await self._settle(usage, status, error_code)
