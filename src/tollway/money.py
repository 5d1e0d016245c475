"""Money as integer units of 1e-10 dollars: exact, and cheap on the hot path.

Dollars are `Decimal` wherever a person reads or writes them (the admin API, the CLI, configuration
prices). Inside the gateway a call's cost, holds and balances are plain `int`s of 1e-10 dollars: integer
arithmetic is exact like `Decimal`, and costs a fraction of it (a metered call does about ten money
operations). The database stores the same units (`store.models.Money`), and Redis too.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

SCALE = 10  # decimal places of a unit: 1 unit = 1e-10 dollars
QUANTUM = Decimal(10) ** -SCALE
_PER_DOLLAR = 10**SCALE


def to_units(amount: Decimal, *, up: bool = False) -> int:
    """Dollars as units, rounded half up (or up, for a reservation that must never fall short)."""
    return int((amount * _PER_DOLLAR).to_integral_value(rounding=ROUND_CEILING if up else ROUND_HALF_UP))


def exact_units(amount: Decimal) -> int | None:
    """Dollars as units when that is exact, else None (a price finer than 1e-10 dollars)."""
    scaled = amount.scaleb(SCALE)
    return int(scaled) if scaled == scaled.to_integral_value() else None


def to_dollars(units: int) -> Decimal:
    """Units as dollars, with the ten decimal places the ledger keeps."""
    return Decimal(units).scaleb(-SCALE)


def format_units(units: int) -> str:
    """Units as a plain dollar amount, no exponent and no trailing zeros: 26250000 -> "0.002625"."""
    sign, units = ("-", -units) if units < 0 else ("", units)
    whole, fraction = divmod(units, _PER_DOLLAR)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:010d}".rstrip("0")


# The most a project's credited total may reach either way: the database keeps money as 64-bit integers
# of units (about $922 million), and a grant is checked against this bound before it is added, so the
# bound minus any single grant still fits in 64 bits.
MAX_CREDIT = Decimal(100_000_000)
MAX_CREDIT_UNITS = int(MAX_CREDIT) * _PER_DOLLAR  # 10**18


def credit_amount_problem(amount: Decimal) -> str | None:
    """What is wrong with `amount` as a credit grant or adjustment, in words a caller can act on; None
    when it can be granted."""
    if not amount.is_finite() or amount == 0:
        return "amount must be a non-zero number of dollars."
    if abs(amount) > MAX_CREDIT:
        return f"amount must be at most {MAX_CREDIT:,} dollars either way."
    if exact_units(amount) is None:
        return f"amount has more than {SCALE} decimal places; the ledger keeps dollars to 1e-{SCALE}."
    return None
