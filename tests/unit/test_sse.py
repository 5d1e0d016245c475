from __future__ import annotations

from tollway.providers.sse import SseSplitter, iter_event_payloads


def test_splitter_yields_whole_events_across_reads() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b'data: {"a":1}\n\ndata: {"b"') == b'data: {"a":1}\n\n'
    assert splitter.feed(b":2}\n\n") == b'data: {"b":2}\n\n'
    assert not splitter.done
    assert splitter.feed(b"data: [DONE]\n\n") == b""
    assert splitter.done


def test_splitter_normalises_crlf_and_stops_at_done() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b'data: {"a":1}\r\n\r\ndata: [DONE]\r\n\r\n') == b'data: {"a":1}\n\n'
    assert splitter.done


def test_iter_event_payloads() -> None:
    block = b'data: {"a":1}\n\nevent: x\ndata: {"b":2}\n\n'
    assert [payload for _event, payload in iter_event_payloads(block)] == [b'{"a":1}', b'{"b":2}']
