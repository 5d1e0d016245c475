"""The simulator's legacy ``/v1/completions``: one answer per prompt (times ``n``), whole or streamed.

The completion of a prompt is ``Echo: <prompt>`` cut to ``max_tokens`` (default 16, as upstream);
``echo`` prepends the prompt itself. Token prompts are echoed as ``<N tokens>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tollway.simulators import openai_content as content

DEFAULT_MAX_TOKENS = 16


@dataclass(frozen=True, slots=True)
class LegacyChoice:
    text: str
    finish_reason: str
    prompt_text: str


@dataclass(slots=True)
class LegacyPlan:
    id: str
    created: int
    model: str
    choices: list[LegacyChoice]
    prompt_tokens: int
    logprobs: int | None
    system_fingerprint: str
    include_usage: bool = False
    stream_chunks: int | None = None

    def usage(self) -> dict[str, Any]:
        completion = sum(content.count_tokens(c.text) for c in self.choices)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }


def _prompts(prompt: Any) -> list[tuple[str, int]]:
    """Each prompt as (text, token count); token arrays count their own length."""
    if isinstance(prompt, str):
        return [(prompt, content.count_tokens(prompt))]
    if prompt and all(isinstance(t, int) for t in prompt):
        return [(f"<{len(prompt)} tokens>", len(prompt))]
    out: list[tuple[str, int]] = []
    for item in prompt:
        out.extend(_prompts(item))
    return out


def plan_completion(
    body: dict[str, Any], *, completion_id: str, created: int, fingerprint: str
) -> LegacyPlan:
    prompts = _prompts(body["prompt"])
    limit = body.get("max_tokens")
    limit = DEFAULT_MAX_TOKENS if limit is None else limit
    n = body.get("n") or 1
    choices: list[LegacyChoice] = []
    for text, _ in prompts:
        answer, cut = content.truncate(f"Echo: {text}", limit)
        answer, stopped = content.apply_stop(answer, body.get("stop"))
        choice = LegacyChoice(
            answer, "length" if cut and not stopped else "stop", text if body.get("echo") else ""
        )
        choices.extend([choice] * n)
    options = body.get("stream_options") or {}
    return LegacyPlan(
        id=completion_id,
        created=created,
        model=body["model"],
        choices=choices,
        prompt_tokens=sum(count for _, count in prompts),
        logprobs=body.get("logprobs"),
        system_fingerprint=fingerprint,
        include_usage=bool(options.get("include_usage")),
    )


def _logprobs(text: str, top: int | None, start: int = 0) -> dict[str, Any] | None:
    if top is None:
        return None
    pieces = content.tokens(text)
    offsets, at = [], start
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    values = [content.token_logprob(p, i) for i, p in enumerate(pieces)]
    return {
        "tokens": pieces,
        "token_logprobs": values,
        "top_logprobs": [{p: v} for p, v in zip(pieces, values, strict=True)] if top else None,
        "text_offset": offsets,
    }


def _base(plan: LegacyPlan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "object": "text_completion",
        "created": plan.created,
        "model": plan.model,
        "system_fingerprint": plan.system_fingerprint,
    }


def completion_response(plan: LegacyPlan) -> dict[str, Any]:
    choices = [
        {
            "text": c.prompt_text + c.text,
            "index": i,
            "logprobs": _logprobs(c.text, plan.logprobs, len(c.prompt_text)),
            "finish_reason": c.finish_reason,
        }
        for i, c in enumerate(plan.choices)
    ]
    return {**_base(plan), "choices": choices, "usage": plan.usage()}


def completion_events(plan: LegacyPlan) -> Iterator[dict[str, Any]]:
    base = _base(plan)
    if plan.include_usage:
        base["usage"] = None
    for index, choice in enumerate(plan.choices):
        pieces = content.split_chunks(choice.text, plan.stream_chunks)
        if choice.prompt_text:
            pieces = [choice.prompt_text, *pieces]
        for piece in pieces:
            logprobs = _logprobs(piece, plan.logprobs)
            yield {
                **base,
                "choices": [{"text": piece, "index": index, "logprobs": logprobs, "finish_reason": None}],
            }
        yield {
            **base,
            "choices": [
                {"text": "", "index": index, "logprobs": None, "finish_reason": choice.finish_reason}
            ],
        }
    if plan.include_usage:
        yield {**base, "choices": [], "usage": plan.usage()}
