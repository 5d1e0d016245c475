"""RESP command encoding for the metering client (metering/resp.py), with the constant parts of a
command encoded once.

A command is an array of bulk strings: `*<n>\\r\\n` then `$<len>\\r\\n<bytes>\\r\\n` per argument.
`hiredis.pack_command` (`resp.pack`) encodes every argument every time, through an sds string and a
`sprintf` per argument: counted under callgrind in the running gateway, ~1,400 instructions an
argument, ~44,000 a metered call in scale-out mode. The hot commands (the admit and settle scripts)
repeat most of their arguments call after call (the script's SHA, the prefix, the project, the key,
its scopes and limits), so their callers keep those parts as bytes (`bulks`, `header`) and write only
what changes per call. Python is no faster than hiredis at encoding an argument (slower, in fact):
the saving is in not encoding the same ones again.

Arguments are encoded as redis-py encodes them: `str` as UTF-8, `int` in decimal, `float` by `repr`,
bytes-like as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby

Arg = bytes | bytearray | memoryview | str | int | float


def encode(arg: Arg) -> bytes:
    """One argument's bytes."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):  # an int subclass, refused as redis-py refuses it: say 1 or 0
        raise TypeError("a bool is not a Redis argument: pass 1 or 0")
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    if isinstance(arg, bytearray | memoryview):
        return bytes(arg)
    raise TypeError(f"a {type(arg).__name__} is not a Redis argument")


def bulk(data: bytes) -> bytes:
    """One encoded argument as a RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(data), data)


def bulks(args: Iterable[Arg]) -> bytes:
    """The arguments as consecutive bulk strings: a part of a command, to be kept and reused."""
    return b"".join([bulk(encode(arg)) for arg in args])


def header(count: int) -> bytes:
    """The array header of a command of `count` arguments."""
    return b"*%d\r\n" % count


def bulks_of(items: list[bytes]) -> bytes:
    """Byte strings as consecutive bulk strings, in runs of equal length joined in C: the drainer
    acknowledges hundreds of stream ids at a time, nearly all of one length (~420 instructions an
    id, against ~1,800 through `hiredis.pack_command`)."""
    parts = []
    for length, run in groupby(items, len):
        parts.append(b"$%d\r\n" % length + (b"\r\n$%d\r\n" % length).join(run) + b"\r\n")
    return b"".join(parts)
