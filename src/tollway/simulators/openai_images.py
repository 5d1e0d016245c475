"""The simulator's `POST /v1/images/generations`: validated like OpenAI's, answered with a real (tiny,
deterministic) PNG per image."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import zlib
from typing import Any

from tollway.simulators import openai_errors as err

KNOWN = frozenset(
    {
        "model",
        "prompt",
        "n",
        "size",
        "quality",
        "response_format",
        "style",
        "user",
        "background",
        "moderation",
        "output_format",
        "output_compression",
    }
)
SIZES = ("256x256", "512x512", "1024x1024", "1792x1024", "1024x1792", "1536x1024", "1024x1536", "auto")
FORMATS = ("url", "b64_json")
MAX_PROMPT = 4000


def validate_images(body: dict[str, Any]) -> str:
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise err.unrecognized(unknown)
    prompt = body.get("prompt")
    if prompt is None:
        raise err.missing("prompt")
    if not isinstance(prompt, str):
        raise err.invalid_type("prompt", "a string", prompt)
    if not prompt or len(prompt) > MAX_PROMPT:
        raise err.invalid(f"'prompt' must be 1 to {MAX_PROMPT} characters.", "prompt")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise err.invalid("'n' must be an integer from 1 to 10.", "n")
    if body.get("size", "1024x1024") not in SIZES:
        raise err.invalid_value("size", body.get("size"), list(SIZES))
    if body.get("response_format", "url") not in FORMATS:
        raise err.invalid_value("response_format", body.get("response_format"), list(FORMATS))
    return str(body.get("model") or "dall-e-2")


def images_response(body: dict[str, Any]) -> dict[str, Any]:
    png = _png(hashlib.sha256(str(body["prompt"]).encode()).digest()[:3])
    as_b64 = body.get("response_format") == "b64_json"
    item: dict[str, Any] = (
        {"b64_json": base64.b64encode(png).decode()}
        if as_b64
        else {"url": "data:image/png;base64," + base64.b64encode(png).decode()}
    )
    item["revised_prompt"] = body["prompt"]
    return {"created": int(time.time()), "data": [dict(item) for _ in range(int(body.get("n", 1)))]}


def _png(rgb: bytes) -> bytes:
    """A 1x1 PNG of one colour (a valid image a client can decode)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" + rgb))
        + chunk(b"IEND", b"")
    )
