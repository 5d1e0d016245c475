"""`bench.critical_path`'s hook puts its four marks where it says: a floor proxy in front of a mock that
holds every answer 30 ms shows those 30 ms in the *upstream* part of each call, and only there. (A mark
on the wrong writer, e.g. the upstream request's end taken as the answer's, would move them.)"""

from __future__ import annotations

import sys
import time
import urllib.request
from pathlib import Path

import orjson
from bench.critical_path import collect, launch
from bench.simultaneous import Spec
from bench.targets import BenchEnv, free_port, start_mock

HELD_MS = 30


def test_the_upstream_wait_lands_in_the_upstream_part(tmp_path: Path) -> None:
    env = BenchEnv(tmp_path, "", "", "", sys.executable, "", None, False, 2, "", "")
    port = free_port()
    mock = start_mock(env, port, 0, (HELD_MS, HELD_MS))
    env.mock_url = env.paced_url = env.slow_url = f"http://127.0.0.1:{port}"
    floor = launch(Spec("floor", {}), env, 0)
    try:
        collect(floor, env, 0)  # nothing timed yet: an empty list, and the hook answers
        for stream in (False, False, True):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
            request = urllib.request.Request(
                floor.base + "/v1/chat/completions",
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200 and answer.read()
        calls = collect(floor, env, 0)
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:  # a call's end is marked after its
            time.sleep(0.05)  # bytes left the proxy: the caller can have them first
            calls += collect(floor, env, 0)
    finally:
        floor.stop()
        mock.terminate()
        mock.wait()
    assert len(calls) == 3
    for before, upstream, after in calls:
        assert upstream >= HELD_MS * 1_000_000
        assert 0 < before < HELD_MS * 1_000_000 and 0 < after < HELD_MS * 1_000_000
