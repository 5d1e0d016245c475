"""The kept parts of commands encode exactly as hiredis encodes the whole command."""

from __future__ import annotations

import hiredis
import pytest

from tollway.metering.resp import pack
from tollway.metering.resp_encode import bulks, bulks_of, encode, header


def test_header_and_bulks_are_the_packed_command() -> None:
    command = ("EVALSHA", "a" * 40, 0, -1, "req_1", 4200, 1.5, b"\x00\r\nraw", "ünïcode", "", 10**15)
    assert header(len(command)) + bulks(command) == hiredis.pack_command(command) == pack(command)


def test_bulks_of_joins_runs_of_any_lengths() -> None:
    ids = [b"1700000000000-0", b"1700000000000-1", b"1700000000001-10", b"1700000000001-11", b"x", b""]
    assert bulks_of(ids) == bulks(ids)
    assert bulks_of([]) == b""


@pytest.mark.parametrize("value", [True, None, object()])
def test_what_is_not_an_argument_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        encode(value)  # type: ignore[arg-type]
