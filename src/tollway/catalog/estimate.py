"""Cost tools: count a prompt's tokens and price a call before making it, itemised."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tollway.catalog.catalog import Catalog, CatalogModel
from tollway.catalog.tokens import TokenCounter
from tollway.errors import InvalidRequest
from tollway.metering.cost import compute_cost
from tollway.types import Operation, Pricing, Usage

_MILLION = Decimal(1_000_000)


@dataclass(slots=True, frozen=True)
class Prompt:
    """The messages (or text) and tools of a call to be counted."""

    messages: list[dict[str, Any]]
    tools: list[Any] | None = None

    @classmethod
    def parse(cls, messages: Any, tools: Any = None) -> Prompt:
        if isinstance(messages, str):
            return cls([{"role": "user", "content": messages}], tools)
        if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):
            return cls(list(messages), tools)
        raise InvalidRequest("'messages' must be a string or an array of message objects.", param="messages")


def count_prompt_tokens(tokens: TokenCounter, prompt: Prompt, model: CatalogModel) -> int:
    count = tokens.count_messages(prompt.messages, model.upstream_model) if prompt.messages else 0
    if prompt.tools:
        import orjson

        count += tokens.count_text(orjson.dumps(prompt.tools).decode(), model.upstream_model)
    return count


def estimate(
    tokens: TokenCounter, catalog: Catalog, prompt: Prompt, model_name: str, expected_output: int
) -> dict[str, Any]:
    model = catalog.resolve(model_name, Operation.CHAT)
    prompt_tokens = count_prompt_tokens(tokens, prompt, model)
    usage = Usage(input_tokens=prompt_tokens, output_tokens=expected_output)
    return {
        "model": model.id,
        "vendor": model.provider,
        "priced": model.listed and model.pricing != Pricing(),
        "prompt_tokens": prompt_tokens,
        "expected_output_tokens": expected_output,
        "breakdown": breakdown(usage, model.pricing),
        "total_cost": _money(compute_cost(usage, model.pricing)),
        "currency": "USD",
    }


def breakdown(usage: Usage, pricing: Pricing) -> list[dict[str, Any]]:
    items = [
        ("input_tokens", usage.input_tokens, pricing.input_per_mtok / _MILLION),
        ("output_tokens", usage.output_tokens, pricing.output_per_mtok / _MILLION),
        ("request", 1, pricing.per_request),
    ]
    return [
        {"item": name, "quantity": quantity, "unit_price": _money(price), "cost": _money(quantity * price)}
        for name, quantity, price in items
        if price
    ]


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("1e-10")).normalize(), "f")
