"""The OpenAI `x-ratelimit-*` response headers, and the duration format OpenAI uses in them."""

from __future__ import annotations

from collections.abc import Iterable

from tollway.metering.protocol import RateState


def format_reset(ms: int) -> str:
    """A duration as OpenAI writes it: "20ms", "1s", "8.64s", "6m0s", "1h2m3s"."""
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
    """The six headers, or the three of each family that has a limit. Spelled out, not looped over
    families: this runs on every admitted call."""
    headers: dict[str, str] = {}
    if requests is not None:
        headers["x-ratelimit-limit-requests"] = str(requests.limit)
        remaining = requests.remaining
        headers["x-ratelimit-remaining-requests"] = str(remaining) if remaining > 0 else "0"
        headers["x-ratelimit-reset-requests"] = format_reset(requests.reset_ms)
    if tokens is not None:
        headers["x-ratelimit-limit-tokens"] = str(tokens.limit)
        remaining = tokens.remaining
        headers["x-ratelimit-remaining-tokens"] = str(remaining) if remaining > 0 else "0"
        headers["x-ratelimit-reset-tokens"] = format_reset(tokens.reset_ms)
    return headers
