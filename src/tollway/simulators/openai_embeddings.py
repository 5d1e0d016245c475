"""The simulator's ``/v1/embeddings`` answer: hashed unit vectors, float or base64, any ``dimensions``."""

from __future__ import annotations

from typing import Any

from tollway.simulators import openai_content as content
from tollway.simulators import openai_errors as err


def _inputs(value: Any) -> list[tuple[str, int]]:
    """Each input as (hash key, token count); token arrays hash their ids and count their length."""
    if isinstance(value, str):
        return [(value, content.count_tokens(value))]
    if value and all(isinstance(t, int) for t in value):
        return [("tokens:" + ",".join(map(str, value)), len(value))]
    out: list[tuple[str, int]] = []
    for item in value:
        out.extend(_inputs(item))
    return out


def resolve_dimensions(model: str, requested: int | None) -> int:
    full = content.DEFAULT_DIMENSIONS.get(model, 1536)
    if requested is None:
        return full
    if not model.startswith("text-embedding-3"):
        raise err.invalid("This model does not support specifying dimensions.")
    if requested > full:
        raise err.out_of_range("dimensions", requested, full, above=True, integer=True)
    return requested


def embeddings_response(body: dict[str, Any]) -> dict[str, Any]:
    model: str = body["model"]
    dims = resolve_dimensions(model, body.get("dimensions"))
    as_base64 = body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    total = 0
    for index, (key, count) in enumerate(_inputs(body["input"])):
        vector = content.embedding(key, dims)
        encoded: Any = content.embedding_base64(vector) if as_base64 else list(vector)
        data.append({"object": "embedding", "index": index, "embedding": encoded})
        total += count
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    }
