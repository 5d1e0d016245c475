"""Server-sent events: cutting a byte stream into whole events, cheaply.

Blocks are passed on as they arrive (several events per read is common) and only cut at event
boundaries, so the per-chunk cost stays a couple of `bytes.find` calls rather than per-line parsing.
"""

from __future__ import annotations

from collections.abc import Iterator

DONE = b"data: [DONE]"


class SseSplitter:
    """Feed raw bytes; get back the complete events so far (the `[DONE]` sentinel is consumed)."""

    __slots__ = ("_pending", "done")

    def __init__(self) -> None:
        self._pending = b""
        self.done = False

    def feed(self, data: bytes) -> bytes:
        # find(), not `in`: bytes.__contains__ first tries the operand as an int and formats (then drops)
        # a TypeError on every chunk.
        if data.find(b"\r") >= 0:
            data = data.replace(b"\r\n", b"\n")
        buffer = self._pending + data if self._pending else data
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._pending = buffer
            return b""
        block, self._pending = buffer[: end + 2], buffer[end + 2 :]
        marker = block.find(DONE)
        if marker >= 0:
            self.done = True
            block = block[:marker]
        return block


def iter_event_payloads(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(whole event bytes, the JSON after `data:`) for each data event in a block of whole events."""
    start = 0
    while start < len(block):
        end = block.find(b"\n\n", start)
        if end < 0:
            end = len(block) - 2
        event = block[start : end + 2]
        start = end + 2
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                yield event, line[5:].strip()
                break


def data_event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"
