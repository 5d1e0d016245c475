"""The OpenAI `x-ratelimit-*` response headers, and the duration format OpenAI uses in them."""

from __future__ import annotations

from collections.abc import Iterable

from multidict import istr

from tollway.metering.protocol import RateState

# Header names as `istr`: aiohttp's CIMultiDict takes an istr as it is, where it case-folds a plain str
# on every response (counted: ~700 instructions a header, six headers on every metered call).
_NAMES: dict[str, tuple[istr, istr, istr]] = {
    family: (istr(f"x-ratelimit-limit-{family}"), istr(f"x-ratelimit-remaining-{family}"),
             istr(f"x-ratelimit-reset-{family}"))
    for family in ("requests", "tokens")
}  # fmt: skip
_LIMIT_REQUESTS, _REMAINING_REQUESTS, _RESET_REQUESTS = _NAMES["requests"]
_LIMIT_TOKENS, _REMAINING_TOKENS, _RESET_TOKENS = _NAMES["tokens"]


def format_reset(ms: int) -> str:
    """A duration as OpenAI writes it: "20ms", "1s", "8.64s", "6m0s", "1h2m3s"."""
    text = _RESETS.get(ms)
    return _remember(_RESETS, ms, _format_reset(ms)) if text is None else text


# Texts by value, looked up on every admitted call: formatting a float costs ~10x a lookup (two resets
# a call), str(int) about twice (two limits). Bounded: a 60 s window's resets cluster under 60,000 ms.
_RESETS: dict[int, str] = {}
_LIMITS: dict[int, str] = {}


def _remember(cache: dict[int, str], value: int, text: str) -> str:
    if len(cache) >= 4096:
        cache.clear()
    cache[value] = text
    return text


def _format_reset(ms: int) -> str:
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:  # the usual case (a 60 s window): at most 5 significant digits, which `g` writes
        return f"{ms / 1000:g}s"  # exactly, without trailing zeros ("1.5s", "20s", "59.999s")
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def most_restrictive(states: Iterable[RateState | None]) -> RateState | None:
    """The window with the fewest units left; on a tie, the one slowest to recover, then the smallest."""
    best: RateState | None = None
    for state in states:
        if state is None:
            continue
        key = (state.remaining, -state.reset_ms, state.limit)
        if best is None or key < (best.remaining, -best.reset_ms, best.limit):
            best = state
    return best


def rate_headers(requests: RateState | None, tokens: RateState | None) -> dict[str, str]:
    """The six headers, or the three of each family that has a limit, as a dict of their own."""
    headers: dict[str, str] = {}
    add_rate_headers(headers, requests, tokens)
    return headers


def add_rate_headers(headers: dict[str, str], requests: RateState | None, tokens: RateState | None) -> None:
    """`rate_headers` written into `headers` (the call's own): this runs on every admitted call, and a
    dict of their own to build and merge cost ~2,300 instructions a call. Spelled out, not looped over
    families."""
    if requests is not None:
        limit, remaining, reset = requests
        headers[_LIMIT_REQUESTS] = _LIMITS.get(limit) or _remember(_LIMITS, limit, str(limit))
        headers[_REMAINING_REQUESTS] = str(remaining) if remaining > 0 else "0"
        headers[_RESET_REQUESTS] = _RESETS.get(reset) or format_reset(reset)
    if tokens is not None:
        limit, remaining, reset = tokens
        headers[_LIMIT_TOKENS] = _LIMITS.get(limit) or _remember(_LIMITS, limit, str(limit))
        headers[_REMAINING_TOKENS] = str(remaining) if remaining > 0 else "0"
        headers[_RESET_TOKENS] = _RESETS.get(reset) or format_reset(reset)
