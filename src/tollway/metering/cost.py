"""Dollar cost of a call from its `Usage` and the catalog's `Pricing`, exact to 1e-10 dollars.

`Usage.input_tokens` is the whole prompt: it *includes* `cached_input_tokens` (cache reads) and
`cache_write_tokens`, as OpenAI's `prompt_tokens` does. Surfaces translating from providers that report
them separately (Anthropic) add them up first.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from tollway.money import QUANTUM, exact_units, to_dollars, to_units
from tollway.types import Pricing, Usage

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


def compute_cost(usage: Usage, pricing: Pricing, *, requests: int = 1) -> Decimal:
    """What a call that consumed `usage` costs under `pricing`, in dollars rounded half-up to 1e-10."""
    return to_dollars(cost_units(usage, pricing, requests=requests))


def cost_units(usage: Usage, pricing: Pricing, *, requests: int = 1) -> int:
    """`compute_cost` in 1e-10 dollar units. Runs after every call, so it is integer arithmetic on the
    prices in units (exact: the same result as the decimal formula); audio seconds and prices finer than
    a unit take the decimal way."""
    known = _RATES.get(id(pricing))  # inline: this runs on every call
    rates = known[1] if known is not None and known[0] is pricing else _rates(pricing)
    if rates is None or usage.audio_seconds:
        return to_units(_cost_decimal(usage, pricing, requests))
    uncached = max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens)
    per_token = (  # units per million tokens
        uncached * rates.input
        + usage.cached_input_tokens * rates.cached_input
        + usage.cache_write_tokens * rates.cache_write
        + usage.output_tokens * rates.output
    )
    return (
        (per_token + 500_000) // 1_000_000  # half up, as the decimal formula's quantize
        + requests * rates.request
        + usage.images * rates.image
        + usage.characters * rates.character
        + usage.search_units * rates.search_unit
    )


def _cost_decimal(usage: Usage, pricing: Pricing, requests: int) -> Decimal:
    cached_price = _or(pricing.cached_input_per_mtok, pricing.input_per_mtok)
    write_price = _or(pricing.cache_write_per_mtok, pricing.input_per_mtok)
    uncached = max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens)
    per_token = (
        uncached * pricing.input_per_mtok
        + usage.cached_input_tokens * cached_price
        + usage.cache_write_tokens * write_price
        + usage.output_tokens * pricing.output_per_mtok
    ) / _MILLION
    # str() first: a float's binary expansion is not the number the provider reported.
    audio = Decimal(str(usage.audio_seconds)) * pricing.per_audio_second if usage.audio_seconds else _ZERO
    total = (
        per_token
        + requests * pricing.per_request
        + usage.images * pricing.per_image
        + audio
        + usage.characters * pricing.per_character
        + usage.search_units * pricing.per_search_unit
    )
    return total.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def worst_case_cost(input_tokens: int, max_output_tokens: int, pricing: Pricing) -> Decimal:
    """`worst_case_units` in dollars."""
    return to_dollars(worst_case_units(input_tokens, max_output_tokens, pricing))


def worst_case_units(input_tokens: int, max_output_tokens: int, pricing: Pricing) -> int:
    """The most a call with this prompt and output budget can cost, in units: every prompt token at the
    dearest input price (a cache write may cost more than a plain input token), plus the per-request
    price. Rounded up, so it is never below `cost_units` of any usage within those bounds."""
    known = _RATES.get(id(pricing))  # inline: this runs before every metered call
    rates = known[1] if known is not None and known[0] is pricing else _rates(pricing)
    if rates is None:
        return to_units(_worst_case_decimal(input_tokens, max_output_tokens, pricing))
    per_token = (input_tokens if input_tokens > 0 else 0) * rates.dearest_input
    per_token += (max_output_tokens if max_output_tokens > 0 else 0) * rates.output
    return -(-per_token // 1_000_000) + rates.request  # ceil(per_token / 1e6)


class _Rates(NamedTuple):
    """A pricing's prices in units (token prices per million tokens), when all are whole units."""

    pricing: Pricing
    input: int
    cached_input: int
    cache_write: int
    dearest_input: int
    output: int
    request: int
    image: int
    character: int
    search_unit: int


_RATES: dict[int, tuple[Pricing, _Rates | None]] = {}  # by id(pricing): a catalog holds a handful


def _rates(pricing: Pricing) -> _Rates | None:
    cached = _RATES.get(id(pricing))
    if cached is not None and cached[0] is pricing:
        return cached[1]
    prices = (
        pricing.input_per_mtok,
        _or(pricing.cached_input_per_mtok, pricing.input_per_mtok),
        _or(pricing.cache_write_per_mtok, pricing.input_per_mtok),
        _dearest_input(pricing),
        pricing.output_per_mtok,
        pricing.per_request,
        pricing.per_image,
        pricing.per_character,
        pricing.per_search_unit,
    )
    units = [exact_units(price) for price in prices]
    whole = [unit for unit in units if unit is not None and unit >= 0]
    rates = _Rates(pricing, *whole) if len(whole) == len(prices) else None
    if len(_RATES) > 10_000:  # bounded, however many pricings come and go
        _RATES.clear()
    _RATES[id(pricing)] = (pricing, rates)
    return rates


def _worst_case_decimal(input_tokens: int, max_output_tokens: int, pricing: Pricing) -> Decimal:
    total = (
        max(0, input_tokens) * _dearest_input(pricing) + max(0, max_output_tokens) * pricing.output_per_mtok
    ) / _MILLION + pricing.per_request
    return total.quantize(QUANTUM, rounding=ROUND_CEILING)


def _dearest_input(pricing: Pricing) -> Decimal:
    return max(
        pricing.input_per_mtok,
        _or(pricing.cached_input_per_mtok, pricing.input_per_mtok),
        _or(pricing.cache_write_per_mtok, pricing.input_per_mtok),
    )


def _or(value: Decimal | None, fallback: Decimal) -> Decimal:
    return fallback if value is None else value
