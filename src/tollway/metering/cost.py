"""Dollar cost of a call from its `Usage` and the catalog's `Pricing`, exact to 1e-10 dollars.

`Usage.input_tokens` is the whole prompt: it *includes* `cached_input_tokens` (cache reads) and
`cache_write_tokens`, as OpenAI's `prompt_tokens` does. Surfaces translating from providers that report
them separately (Anthropic) add them up first.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from tollway.types import Pricing, Usage

QUANTUM = Decimal("1e-10")
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


def compute_cost(usage: Usage, pricing: Pricing, *, requests: int = 1) -> Decimal:
    """What a call that consumed `usage` costs under `pricing`, rounded half-up to 1e-10 dollars."""
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
    """The most a call with this prompt and output budget can cost: every prompt token at the dearest
    input price (a cache write may cost more than a plain input token), plus the per-request price.
    Rounded up, so it is never below `compute_cost` of any usage within those bounds.

    Runs before every metered call, so it is integer arithmetic on the prices in 1e-10 dollar units
    (exact: the same result as the decimal formula); prices finer than that take the decimal way."""
    rates = _worst_case_rates(pricing)
    if rates is None:
        return _worst_case_decimal(input_tokens, max_output_tokens, pricing)
    _, input_units, output_units, request_units = rates
    per_token = max(0, input_tokens) * input_units + max(0, max_output_tokens) * output_units
    return Decimal(-(-per_token // 1_000_000) + request_units).scaleb(-10)  # ceil(per_token / 1e6)


_Rates = tuple[Pricing, int, int, int]  # the pricing, then dearest input, output per Mtok, per request
_RATES: dict[int, _Rates | None] = {}  # id(pricing): a catalog holds a handful of pricings for its life


def _worst_case_rates(pricing: Pricing) -> _Rates | None:
    cached = _RATES.get(id(pricing))
    if cached is not None and cached[0] is pricing:
        return cached
    dearest, output, request = (
        _units(price) for price in (_dearest_input(pricing), pricing.output_per_mtok, pricing.per_request)
    )
    rates = (
        None if dearest is None or output is None or request is None else (pricing, dearest, output, request)
    )
    if len(_RATES) > 10_000:  # bounded, however many pricings come and go
        _RATES.clear()
    _RATES[id(pricing)] = rates
    return rates


def _units(price: Decimal) -> int | None:
    scaled = price.scaleb(10)
    return int(scaled) if scaled == scaled.to_integral_value() else None


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
