"""An upstream's SSE response, read in blocks of whole events: the part every streaming provider shares.

Subclasses turn each block into what the gateway passes on (`_on_block`) and mark the stream complete
when its last event arrives; a stream that ends before that is an error naming the backend, and so is a
broken connection or an unreadable event. Events that came before a failure still go out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson

from tollway.errors import UpstreamError
from tollway.providers.sse import SseSplitter
from tollway.providers.upstream_errors import TRANSPORT_ERRORS, transport_error
from tollway.types import Usage


class UpstreamStream:
    format = "openai"

    def __init__(self, response: aiohttp.ClientResponse, backend: str):
        self.usage: Usage | None = None
        self._response = response
        self._backend = backend
        self.complete = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._blocks()

    async def aclose(self) -> None:
        self._response.close()

    def _on_block(self, block: bytes) -> tuple[bytes, UpstreamError | None]:
        """What to pass on for a block of whole events, and the failure among them if any."""
        raise NotImplementedError

    async def _blocks(self) -> AsyncIterator[bytes]:
        splitter = SseSplitter()
        try:
            async for data in self._response.content.iter_any():
                block = splitter.feed(data)
                self.complete = self.complete or splitter.done  # OpenAI's `data: [DONE]`
                out, failure = self._on_block(block) if block else (b"", None)
                if out:
                    yield out
                if failure is not None:
                    raise failure
                if self.complete:
                    return
        except TRANSPORT_ERRORS as exc:
            raise transport_error(self._backend, exc) from exc
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"Backend '{self._backend}' sent an unreadable event.", backend=self._backend
            ) from exc
        finally:
            self._response.release()
        raise UpstreamError(
            f"Backend '{self._backend}' closed the stream before it was complete.", backend=self._backend
        )
