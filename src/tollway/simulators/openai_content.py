"""Deterministic "model" of the simulator: tokens, reply text, tool calls, JSON outputs and embeddings.

Pure functions of the request, so the same request always gets the same answer, streamed or not.

Token rule: a token is a word (``\\w+``) or one punctuation character, together with the whitespace that
precedes it. Joining the tokens of a text gives the text back (trailing whitespace aside), which is what
lets a stream be cut per token while counting exactly as the non-streamed answer does.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")
MESSAGE_OVERHEAD = 3  # per message, as in OpenAI's published counting recipe
REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
IMAGE_TOKENS = 85  # the fixed "low detail" cost of one image


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def truncate(text: str, limit: int | None) -> tuple[str, bool]:
    """``text`` cut to ``limit`` tokens, and whether it was cut."""
    if limit is None:
        return text, False
    pieces = tokens(text)
    if len(pieces) <= limit:
        return text, False
    return "".join(pieces[:limit]), True


def apply_stop(text: str, stop: str | list[str] | None) -> tuple[str, bool]:
    """Cut at the earliest stop sequence, as a model stops generating there (the sequence is not sent)."""
    sequences = [stop] if isinstance(stop, str) else (stop or [])
    hits = [text.find(s) for s in sequences if s and s in text]
    return (text[: min(hits)], True) if hits else (text, False)


def split_chunks(text: str, count: int | None) -> list[str]:
    """Content deltas for a stream: one per token, or exactly ``count`` pieces when asked."""
    pieces = tokens(text) or ([text] if text else [])
    if count is None or count <= 0:
        return pieces or [""]
    if len(pieces) < count:
        # Fewer tokens than chunks wanted: cut by characters, then pad with empty deltas.
        pieces = list(text)
    size, extra = divmod(len(pieces), count)
    out: list[str] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append("".join(pieces[start:end]))
        start = end
    return out


@dataclass(frozen=True, slots=True)
class Attachments:
    images: int = 0
    audio: int = 0
    files: int = 0

    def describe(self) -> str:
        parts = [
            _plural(n, noun)
            for n, noun in ((self.images, "image"), (self.audio, "audio clip"), (self.files, "file"))
            if n
        ]
        return f" (I see {', '.join(parts)})" if parts else ""


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def message_text(content: Any) -> tuple[str, Attachments]:
    """The text of a message's ``content`` (string or parts) and what else it carried."""
    if isinstance(content, str):
        return content, Attachments()
    if not isinstance(content, list):
        return "", Attachments()
    texts: list[str] = []
    images = audio = files = 0
    for part in content:
        kind = part.get("type")
        if kind == "text":
            texts.append(part["text"])
        elif kind == "image_url":
            images += 1
        elif kind == "input_audio":
            audio += 1
        elif kind == "file":
            files += 1
    return " ".join(texts), Attachments(images, audio, files)


def prompt_tokens_for_messages(messages: list[dict[str, Any]], tools: list[Any] | None) -> int:
    total = REPLY_PRIMING
    for message in messages:
        text, att = message_text(message.get("content"))
        total += MESSAGE_OVERHEAD + count_tokens(text) + att.images * IMAGE_TOKENS
        if message.get("name"):
            total += 1
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            total += count_tokens(function.get("name", "")) + count_tokens(function.get("arguments", ""))
    if tools:
        total += count_tokens(orjson.dumps(tools).decode())
    return total


def echo_reply(messages: list[dict[str, Any]]) -> str:
    """``Echo: <last user text>`` plus what the user attached; after tool results, a summary of them."""
    last = messages[-1]
    if last.get("role") == "tool":
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.append(message_text(message.get("content"))[0])
        return "Tool results: " + " | ".join(reversed(results))
    for message in reversed(messages):
        if message.get("role") == "user":
            text, att = message_text(message.get("content"))
            return f"Echo: {text}{att.describe()}"
    return "Echo: "


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))[0]
    return ""


def example_from_schema(schema: Any, depth: int = 0) -> Any:
    """A deterministic value that satisfies the ``required`` part of a JSON schema."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_from_schema(schema[key][0], depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    build = _EXAMPLES.get(kind)
    return build(schema, depth) if build is not None else None


def _example_object(schema: dict[str, Any], depth: int) -> dict[str, Any]:
    props = schema.get("properties") or {}
    return {
        name: example_from_schema(props.get(name, {}), depth + 1) for name in schema.get("required") or ()
    }


_EXAMPLES: dict[str, Callable[[dict[str, Any], int], Any]] = {
    "string": lambda s, d: "Paris",
    "integer": lambda s, d: max(1, int(s.get("minimum", 1))),
    "number": lambda s, d: max(1.0, float(s.get("minimum", 1.0))),
    "boolean": lambda s, d: True,
    "null": lambda s, d: None,
    "array": lambda s, d: [example_from_schema(s.get("items", {}), d + 1)],
    "object": _example_object,
}


def tool_call_id(seed: str, index: int) -> str:
    digest = hashlib.blake2b(f"{seed}/{index}".encode(), digest_size=12).hexdigest()
    return f"call_{digest}"


def pick_tools(
    tools: list[dict[str, Any]], tool_choice: Any, messages: list[dict[str, Any]], parallel: bool
) -> list[dict[str, Any]]:
    """Which function tools the simulated model calls (empty: it answers with text)."""
    if not tools or tool_choice == "none":
        return []
    functions = [t for t in tools if t.get("type") == "function"]
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        name = tool_choice["function"]["name"]
        return [t for t in functions if t["function"]["name"] == name][:1]
    if messages[-1].get("role") != "user" and tool_choice != "required":
        return []
    text = last_user_text(messages).lower()
    chosen = [t for t in functions if t["function"]["name"].lower() in text]
    if not chosen and ("weather" in text or tool_choice == "required"):
        weather = [t for t in functions if "weather" in t["function"]["name"].lower()]
        chosen = weather or functions[:1]
    return chosen if parallel else chosen[:1]


def tool_arguments(tool: dict[str, Any]) -> str:
    params = tool["function"].get("parameters") or {"type": "object"}
    value = example_from_schema(params)
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def split_arguments(arguments: str, pieces: int = 3) -> list[str]:
    """Argument fragments for tool-call deltas: several pieces, as OpenAI sends them."""
    if len(arguments) <= 1:
        return [arguments]
    step = max(1, math.ceil(len(arguments) / pieces))
    return [arguments[i : i + step] for i in range(0, len(arguments), step)]


def json_reply(response_format: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    if response_format.get("type") == "json_schema":
        value = example_from_schema(response_format["json_schema"].get("schema") or {"type": "object"})
    else:
        value = {"echo": last_user_text(messages)}
    return orjson.dumps(value).decode()


def token_logprob(token: str, position: int) -> float:
    # Deterministic, slightly negative, and different per position so tests can tell tokens apart.
    return -round(0.01 * ((position % 7) + 1), 4)


def chat_logprobs(pieces: list[str], top: int, offset: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, piece in enumerate(pieces, start=offset):
        lp = token_logprob(piece, i)
        entry: dict[str, Any] = {"token": piece, "logprob": lp, "bytes": list(piece.encode())}
        entry["top_logprobs"] = [
            {"token": piece if k == 0 else f"{piece}{k}", "logprob": lp - k, "bytes": list(piece.encode())}
            for k in range(top)
        ]
        out.append(entry)
    return out


DEFAULT_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


@functools.lru_cache(maxsize=4096)
def embedding(text: str, dims: int) -> tuple[float, ...]:
    """A unit-norm vector derived from a hash of ``text``: same text, same vector.

    Values are drawn in a fixed order, so asking for fewer ``dimensions`` yields the renormalised prefix
    of the full vector, which is how OpenAI's shortened text-embedding-3 vectors behave.
    """
    raw = bytearray()
    counter = 0
    while len(raw) < dims * 2:
        raw += hashlib.blake2b(f"{counter}:{text}".encode(), digest_size=64).digest()
        counter += 1
    values = [(v - 32767.5) for v in struct.unpack(f"<{dims}H", bytes(raw[: dims * 2]))]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(v / norm for v in values)


def embedding_base64(vector: tuple[float, ...]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
