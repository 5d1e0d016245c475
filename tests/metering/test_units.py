"""Pure pieces: cost arithmetic and the rate-limit header format."""

from __future__ import annotations

from decimal import Decimal

from tollway.metering import RateState, compute_cost, cost_units, format_reset, rate_headers, worst_case_cost
from tollway.metering.headers import most_restrictive
from tollway.money import format_units, to_dollars, to_units
from tollway.types import Pricing, Usage

PRICING = Pricing(
    input_per_mtok=Decimal("2.50"),
    cached_input_per_mtok=Decimal("1.25"),
    cache_write_per_mtok=Decimal("3.75"),
    output_per_mtok=Decimal("10"),
)


# Pricings the integer paths are checked against the decimal formulas on: cache prices, per-unit
# prices, a price finer than a unit (the decimal way), and token prices of half units (rounding).
SWEEP = [
    PRICING,
    Pricing(input_per_mtok=Decimal("0.15"), output_per_mtok=Decimal("0.6"), per_request=Decimal("0.001")),
    Pricing(input_per_mtok=Decimal("3"), cache_write_per_mtok=Decimal("3.75"), output_per_mtok=Decimal("15")),
    Pricing(per_image=Decimal("0.04"), per_character=Decimal("0.000015"), per_search_unit=Decimal("2E-3")),
    Pricing(input_per_mtok=Decimal("0.00000000001"), output_per_mtok=Decimal("1")),  # finer than 1e-10
    Pricing(input_per_mtok=Decimal("0.00005"), output_per_mtok=Decimal("0.00015")),  # 0.5, 1.5 units a token
]


def test_token_cost_splits_cached_and_written_input() -> None:
    usage = Usage(input_tokens=1000, cached_input_tokens=400, cache_write_tokens=100, output_tokens=50)
    # 500 plain x 2.5 + 400 x 1.25 + 100 x 3.75 + 50 x 10, per million
    assert compute_cost(usage, PRICING) == Decimal("0.0026250000")


def test_cached_prices_fall_back_to_input() -> None:
    pricing = Pricing(input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15"))
    usage = Usage(input_tokens=100, cached_input_tokens=50, cache_write_tokens=50, output_tokens=1)
    assert compute_cost(usage, pricing) == Decimal("0.000315")


def test_unit_prices_and_rounding() -> None:
    pricing = Pricing(
        per_request=Decimal("0.001"),
        per_image=Decimal("0.04"),
        per_audio_second=Decimal("0.0001"),
        per_character=Decimal("0.000015"),
        per_search_unit=Decimal("0.002"),
        input_per_mtok=Decimal("0.00000001"),
    )
    usage = Usage(input_tokens=7, images=2, audio_seconds=12.3, characters=1000, search_units=3)
    cost = compute_cost(usage, pricing, requests=2)
    assert cost == Decimal("0.002") + Decimal("0.08") + Decimal("0.00123") + Decimal("0.015") + Decimal(
        "0.006"
    )
    assert cost.as_tuple().exponent == -10  # 7e-14 rounded away


def test_worst_case_covers_any_usage_within_bounds() -> None:
    worst = worst_case_cost(1000, 50, PRICING)
    assert worst == Decimal("0.0042500000")  # every prompt token at the cache-write price
    assert worst >= compute_cost(Usage(input_tokens=1000, cache_write_tokens=1000, output_tokens=50), PRICING)
    assert worst_case_cost(1, 0, Pricing(input_per_mtok=Decimal("1"))) == Decimal("0.0000010000")
    assert worst_case_cost(1, 1, Pricing(input_per_mtok=Decimal("0.00003"))) == Decimal("1e-10")  # rounds up


def test_worst_case_integer_path_equals_the_decimal_formula() -> None:
    from tollway.metering.cost import _worst_case_decimal

    for pricing in SWEEP:
        for prompt, output in ((0, 0), (1, 1), (7, 0), (25, 32), (999_999, 4096), (-3, 5)):
            worst = worst_case_cost(prompt, output, pricing)
            assert worst == _worst_case_decimal(prompt, output, pricing)
            assert worst.as_tuple().exponent == -10


def test_cost_integer_path_equals_the_decimal_formula() -> None:
    from tollway.metering.cost import _cost_decimal

    usages = [
        Usage(),
        Usage(input_tokens=1, output_tokens=1),
        Usage(input_tokens=1),  # half a unit at the last pricing: rounds up, as ROUND_HALF_UP
        Usage(input_tokens=1000, cached_input_tokens=400, cache_write_tokens=100, output_tokens=50),
        Usage(input_tokens=5, cached_input_tokens=9),  # more cached than input: none uncached
        Usage(input_tokens=999_999, output_tokens=4096, images=3, characters=11, search_units=2),
    ]
    for pricing in SWEEP:
        for usage in usages:
            for requests in (0, 1, 2):
                expected = _cost_decimal(usage, pricing, requests)
                assert compute_cost(usage, pricing, requests=requests) == expected
                assert cost_units(usage, pricing, requests=requests) == to_units(expected)


def test_units_format_as_plain_dollars() -> None:
    for units in (0, 1, 10, 26_250_000, 10**10, 10**11, 12_345_678_901_234, -26_250_000):
        expected = format(to_dollars(units).normalize(), "f")
        assert format_units(units) == expected
    assert format_units(26_250_000) == "0.002625"
    assert format_units(10**11) == "10"


def test_reset_format_matches_openai() -> None:
    assert [format_reset(ms) for ms in (0, 20, 999, 1000, 8640, 59_999, 60_000, 360_000, 3_723_000)] == [
        "0s", "20ms", "999ms", "1s", "8.64s", "59.999s", "1m0s", "6m0s", "1h2m3s",
    ]  # fmt: skip


def test_every_reset_under_a_minute_is_seconds_with_up_to_three_decimals() -> None:
    for ms in range(1000, 60_000):
        whole, frac = divmod(ms, 1000)
        assert format_reset(ms) == f"{whole}.{frac:03d}".rstrip("0").rstrip(".") + "s"


def test_headers_pick_fewest_remaining() -> None:
    tight, loose = RateState(10, 1, 500), RateState(100, 50, 60_000)
    assert most_restrictive([loose, None, tight]) is tight
    assert most_restrictive([RateState(5, 1, 100), RateState(9, 1, 900)]) == RateState(9, 1, 900)
    assert rate_headers(tight, None) == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "500ms",
    }
    assert rate_headers(None, RateState(1000, -5, 0))["x-ratelimit-remaining-tokens"] == "0"
