"""One behaviour, two implementations: every test runs on MemoryMeter+SQLite and RedisMeter+PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tollway.errors import InsufficientCredit, InvalidRequest, NotFound, RateLimited
from tollway.metering import Ticket
from tollway.store.models import CreditEntry, Project, UsageRow
from tollway.types import Limits

from .conftest import Harness, add_project, admission, call_record, headers_of, sync


async def admit_all(h: Harness, admissions: list) -> tuple[list[Ticket], list[BaseException]]:
    results = await asyncio.gather(*(h.meter.admit(a) for a in admissions), return_exceptions=True)
    tickets = [r for r in results if isinstance(r, Ticket)]
    errors = [r for r in results if isinstance(r, BaseException)]
    return tickets, errors


async def ledger_totals(h: Harness, project_id: str = "p1") -> tuple[int, Decimal, Decimal, Decimal]:
    async with h.factory() as session:
        count, cost = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(UsageRow.cost), 0)).where(
                    UsageRow.project_id == project_id
                )
            )
        ).one()
        project = await session.get(Project, project_id)
        assert project is not None
        return count, Decimal(cost), project.credited, project.spent


async def test_rpm_is_exact_under_concurrent_admits(h: Harness) -> None:
    limits = Limits(rpm=20)
    tickets, errors = await admit_all(h, [admission(key_limits=limits) for _ in range(40)])
    assert len(tickets) == 20
    assert len(errors) == 20 and all(isinstance(e, RateLimited) for e in errors)
    error = errors[0]
    assert isinstance(error, RateLimited)
    assert error.retry_after == 60
    assert error.headers["retry-after"] == "60"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.headers["x-ratelimit-limit-requests"] == "20"


async def test_rpm_window_slides(h: Harness) -> None:
    limits = Limits(rpm=2)
    await h.meter.admit(admission(key_limits=limits))
    h.clock.advance(30)
    await h.meter.admit(admission(key_limits=limits))
    h.clock.advance(10)
    with pytest.raises(RateLimited) as refused:
        await h.meter.admit(admission(key_limits=limits))
    assert refused.value.retry_after == 20  # the first request leaves the window 60 s after it came
    h.clock.advance(20)
    await h.meter.admit(admission(key_limits=limits))
    with pytest.raises(RateLimited):
        await h.meter.admit(admission(key_limits=limits))


async def test_tpm_reserves_then_settles_to_actual(h: Harness) -> None:
    limits = Limits(tpm=1000)
    first = await h.meter.admit(admission(project_limits=limits, tokens=600))
    assert headers_of(first)["x-ratelimit-remaining-tokens"] == "400"
    with pytest.raises(RateLimited):
        await h.meter.admit(admission(project_limits=limits, tokens=600))
    await h.meter.settle(first, call_record(first, input_tokens=60, output_tokens=40))
    await sync(h)
    second = await h.meter.admit(admission(project_limits=limits, tokens=600))
    assert headers_of(second)["x-ratelimit-remaining-tokens"] == "300"
    h.clock.advance(60)
    third = await h.meter.admit(admission(project_limits=limits, tokens=1000))  # window emptied
    assert headers_of(third)["x-ratelimit-remaining-tokens"] == "0"


async def test_window_slides_past_calls_that_used_no_tokens(h: Harness) -> None:
    # Calls settled at 0 tokens (failed, cancelled, or token-free operations) leave entries worth 0 in
    # the TPM window. Pruning a batch of only those once must not break admission (a Lua "-0" once
    # made Redis refuse every admit of the key with "value is not an integer").
    limits = Limits(tpm=1000)
    for _ in range(3):
        ticket = await h.meter.admit(admission(key_limits=limits, tokens=100))
        await h.meter.settle(ticket, call_record(ticket))  # 0 tokens used
    await sync(h)
    h.clock.advance(61)
    ticket = await h.meter.admit(admission(key_limits=limits, tokens=100))
    assert headers_of(ticket)["x-ratelimit-remaining-tokens"] == "900"


async def test_windows_slide_entry_by_entry_and_in_bulk(h: Harness) -> None:
    # One admit usually sees one or two entries leave the window; after a pause, many at once (more
    # than the Redis script peeks at in one call). Either way the counts, the token sum and the
    # reset (from the oldest entry left) stay exact.
    limits = Limits(rpm=100, tpm=10_000)
    for i in range(20):  # one call a second, at t = 0..19, reserving 10, 20, ... 200 tokens
        await h.meter.admit(admission(key_limits=limits, tokens=10 * (i + 1)))
        h.clock.advance(1)
    h.clock.advance(40.5)  # t = 60.5: only the call at t = 0 has left
    headers = headers_of(await h.meter.admit(admission(key_limits=limits, tokens=1)))
    assert headers["x-ratelimit-remaining-requests"] == "80"  # 19 left + this one
    assert headers["x-ratelimit-remaining-tokens"] == str(10_000 - (2100 - 10) - 1)
    assert headers["x-ratelimit-reset-requests"] == "500ms"  # the call at t = 1 leaves at t = 61
    assert headers["x-ratelimit-reset-tokens"] == "500ms"
    h.clock.advance(12)  # t = 72.5: the twelve calls at t = 1..12 leave together
    headers = headers_of(await h.meter.admit(admission(key_limits=limits, tokens=1)))
    assert headers["x-ratelimit-remaining-requests"] == str(100 - 9)  # t = 13..19, 60.5, this one
    assert headers["x-ratelimit-remaining-tokens"] == str(10_000 - 10 * sum(range(14, 21)) - 2)
    assert headers["x-ratelimit-reset-requests"] == "500ms"  # the call at t = 13 leaves at t = 73
    assert headers["x-ratelimit-reset-tokens"] == "500ms"
    h.clock.advance(120)  # everything has left: a fresh window
    headers = headers_of(await h.meter.admit(admission(key_limits=limits, tokens=5)))
    assert headers["x-ratelimit-remaining-requests"] == "99"
    assert headers["x-ratelimit-remaining-tokens"] == "9995"
    assert headers["x-ratelimit-reset-tokens"] == "1m0s"


async def test_concurrency_slots_released_on_settle(h: Harness) -> None:
    limits = Limits(max_concurrency=2)
    tickets, errors = await admit_all(h, [admission(model_limits=limits) for _ in range(3)])
    assert len(tickets) == 2 and len(errors) == 1
    await h.meter.settle(tickets[0], call_record(tickets[0]))
    await sync(h)
    await h.meter.admit(admission(model_limits=limits))
    with pytest.raises(RateLimited):
        await h.meter.admit(admission(model_limits=limits))


async def test_refusal_takes_nothing(h: Harness) -> None:
    await h.meter.grant("p1", Decimal("0.05"), None)
    with pytest.raises(InsufficientCredit):
        await h.meter.admit(
            admission(key_limits=Limits(rpm=2, tpm=100), tokens=10, max_cost="0.10", enforced=True)
        )
    for _ in range(2):  # the refused call returned the request and the tokens it would have taken
        ticket = await h.meter.admit(admission(key_limits=Limits(rpm=2, tpm=100), tokens=50))
    assert headers_of(ticket)["x-ratelimit-remaining-tokens"] == "0"
    # a 429 on the project does not consume the key's window either
    await h.meter.admit(admission(key="k2", key_limits=Limits(rpm=5), project_limits=Limits(rpm=1)))
    with pytest.raises(RateLimited):
        await h.meter.admit(admission(key="k2", key_limits=Limits(rpm=5), project_limits=Limits(rpm=1)))
    ticket = await h.meter.admit(admission(key="k2", key_limits=Limits(rpm=5)))
    assert headers_of(ticket)["x-ratelimit-remaining-requests"] == "3"
    assert await h.meter.balance("p1") == Decimal("0.05")


async def test_credit_reserved_then_settled_exactly(h: Harness) -> None:
    assert await h.meter.grant("p1", Decimal("1.00"), "top-up") == Decimal("1.00")
    ticket = await h.meter.admit(admission(max_cost="0.30", enforced=True))
    assert await h.meter.balance("p1") == Decimal("0.70")
    await h.meter.settle(ticket, call_record(ticket, cost="0.1234567891"))
    await sync(h)
    assert await h.meter.balance("p1") == Decimal("0.8765432109")
    count, cost, credited, spent = await ledger_totals(h)
    assert (count, cost, credited, spent) == (
        1,
        Decimal("0.1234567891"),
        Decimal("1"),
        Decimal("0.1234567891"),
    )


async def test_balance_never_negative_when_enforced(h: Harness) -> None:
    await h.meter.grant("p1", Decimal("0.25"), None)
    tickets, errors = await admit_all(h, [admission(max_cost="0.10", enforced=True) for _ in range(5)])
    assert len(tickets) == 2 and all(isinstance(e, InsufficientCredit) for e in errors)
    assert await h.meter.balance("p1") == Decimal("0.05")
    for ticket in tickets:
        await h.meter.settle(ticket, call_record(ticket, cost="0.10"))
    await sync(h)
    assert await h.meter.balance("p1") == Decimal("0.05")


async def test_unenforced_project_is_never_refused_but_charged(h: Harness) -> None:
    await add_project(h.factory, "free")
    ticket = await h.meter.admit(admission(project="free", max_cost="5"))
    await h.meter.settle(ticket, call_record(ticket, cost="0.5"))
    await sync(h)
    assert await h.meter.balance("free") == Decimal("-0.5")
    await h.meter.admit(admission(project="free", max_cost="5"))
    assert (await ledger_totals(h, "free"))[3] == Decimal("0.5")


async def test_key_spend_cap(h: Harness) -> None:
    first = await h.meter.admit(admission(max_cost="0.6", cap="1.00"))
    with pytest.raises(InsufficientCredit):
        await h.meter.admit(admission(max_cost="0.6", cap="1.00"))
    await h.meter.settle(first, call_record(first, cost="0.5"))
    await sync(h)
    assert await h.meter.key_spend("k1") == Decimal("0.5")
    second = await h.meter.admit(admission(max_cost="0.5", cap="1.00"))
    with pytest.raises(InsufficientCredit):
        await h.meter.admit(admission(max_cost="0.01", cap="1.00"))
    await h.meter.settle(second, call_record(second, cost="0.25"))
    await sync(h)
    assert await h.meter.key_spend("k1") == Decimal("0.75")
    assert await h.meter.key_spend("unused") == Decimal(0)


async def test_amounts_beyond_doubles_settle_exactly(h: Harness) -> None:
    # 16-digit unit amounts (~$987,654 a call): a double cannot hold them, nor their difference, exactly
    hold, cost = "987654.3210987653", "987654.3210987651"
    await h.meter.grant("p1", Decimal("2000000"), None)
    ticket = await h.meter.admit(admission(max_cost=hold, enforced=True, cap="1000000"))
    await h.meter.settle(ticket, call_record(ticket, cost=cost))
    await sync(h)
    assert await h.meter.balance("p1") == Decimal("2000000") - Decimal(cost)
    assert await h.meter.key_spend("k1") == Decimal(cost)
    left = Decimal("1000000") - Decimal(cost)  # under the cap: exactly this much more, not 1e-10 more
    with pytest.raises(InsufficientCredit):
        await h.meter.admit(admission(max_cost=left + Decimal("1e-10"), cap="1000000"))
    await h.meter.admit(admission(max_cost=left, cap="1000000"))


async def test_settle_is_idempotent(h: Harness) -> None:
    await h.meter.grant("p1", Decimal("1"), None)
    ticket = await h.meter.admit(
        admission(max_cost="0.5", enforced=True, key_limits=Limits(max_concurrency=1))
    )
    record = call_record(ticket, cost="0.2")
    await h.meter.settle(ticket, record)
    await h.meter.settle(ticket, record)
    await sync(h)
    assert await h.meter.balance("p1") == Decimal("0.8")
    assert (await ledger_totals(h))[:2] == (1, Decimal("0.2"))


async def test_ledger_is_durable_and_sums_to_credit_consumed(h: Harness) -> None:
    await h.meter.grant("p1", Decimal("10"), None)
    costs = [Decimal("0.0000000001") * i + Decimal("0.01") for i in range(25)]
    for cost in costs:
        ticket = await h.meter.admit(admission(max_cost="0.02", enforced=True))
        await h.meter.settle(ticket, call_record(ticket, cost=cost, input_tokens=3, output_tokens=4))
    refused = call_record(cost="0", status=429, project="p1", key="k1")
    refused.error_code = "rate_limit_exceeded"
    await h.meter.record(refused)
    await h.meter.flush()
    count, cost_sum, credited, spent = await ledger_totals(h)
    assert count == 26
    assert cost_sum == spent == sum(costs)
    assert credited - spent == await h.meter.balance("p1")


async def test_ledger_written_in_background(h: Harness) -> None:
    ticket = await h.meter.admit(admission())
    await h.meter.settle(ticket, call_record(ticket, cost="0.01"))
    for _ in range(50):  # durable within 250 ms without anyone calling flush
        await asyncio.sleep(0.01)
        if (await ledger_totals(h))[0] == 1:
            break
    assert (await ledger_totals(h))[0] == 1


async def test_headers_report_the_most_restrictive_scope(h: Harness) -> None:
    ticket = await h.meter.admit(
        admission(
            key_limits=Limits(rpm=100, tpm=10_000),
            project_limits=Limits(rpm=50),
            model_limits=Limits(max_concurrency=3),
            tokens=250,
        )
    )
    assert headers_of(ticket) == {
        "x-ratelimit-limit-requests": "50",
        "x-ratelimit-remaining-requests": "49",
        "x-ratelimit-reset-requests": "1m0s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "9750",
        "x-ratelimit-reset-tokens": "1m0s",
    }
    h.clock.advance(59.98)
    ticket = await h.meter.admit(admission(project_limits=Limits(rpm=50)))
    assert headers_of(ticket) == {
        "x-ratelimit-limit-requests": "50",
        "x-ratelimit-remaining-requests": "48",
        "x-ratelimit-reset-requests": "20ms",
    }
    assert headers_of(await h.meter.admit(admission())) == {}


async def test_grant_is_durable_and_may_adjust_down(h: Harness) -> None:
    assert await h.meter.grant("p1", Decimal("2.5"), "top-up") == Decimal("2.5")
    assert await h.meter.grant("p1", Decimal("-0.5"), "refund") == Decimal("2")
    async with h.factory() as session:
        amounts = (await session.execute(select(CreditEntry.amount).order_by(CreditEntry.amount))).scalars()
        assert list(amounts) == [Decimal("-0.5"), Decimal("2.5")]
    assert (await ledger_totals(h))[2] == Decimal(2)


async def test_restart_rebuilds_live_state_from_the_database(h: Harness) -> None:
    await h.meter.grant("p1", Decimal("3"), None)
    for cost in ("0.4", "0.35"):
        ticket = await h.meter.admit(admission(max_cost="1", enforced=True, cap="5"))
        await h.meter.settle(ticket, call_record(ticket, cost=cost))
    await h.meter.flush()
    fresh = await h.restarted()
    assert await fresh.balance("p1") == Decimal("2.25")
    assert await fresh.key_spend("k1") == Decimal("0.75")
    with pytest.raises(InsufficientCredit):
        await fresh.admit(admission(max_cost="2.5", enforced=True))


async def test_grant_to_unknown_project_is_refused(h: Harness) -> None:
    with pytest.raises(NotFound):
        await h.meter.grant("nope", Decimal("1"), None)


async def test_grants_past_what_the_ledger_holds_are_refused_and_change_nothing(h: Harness) -> None:
    # Money is 64-bit integer units in the database (about $922 million): a grant that would not fit
    # must be a clear refusal, not an overflow (SQLite turns one into a float, PostgreSQL errors).
    assert await h.meter.grant("p1", Decimal("60000000"), None) == Decimal("60000000")
    with pytest.raises(InvalidRequest, match="past 100,000,000 dollars") as too_far:
        await h.meter.grant("p1", Decimal("40000000.01"), None)
    assert too_far.value.param == "amount"
    for amount, problem in (
        ("1000000000", "at most 100,000,000 dollars"),
        ("-100000000.5", "at most 100,000,000 dollars"),
        ("0.00000000001", "more than 10 decimal places"),
        ("0", "non-zero"),
    ):
        with pytest.raises(InvalidRequest, match=problem):
            await h.meter.grant("p1", Decimal(amount), None)
    assert await h.meter.grant("p1", Decimal("40000000"), None) == Decimal("100000000")  # the bound itself
    assert await h.meter.grant("p1", Decimal("-100000000"), None) == Decimal(0)
    assert await h.meter.balance("p1") == Decimal(0)
    async with h.factory() as session:
        assert len((await session.execute(select(CreditEntry.amount))).all()) == 3
    assert (await ledger_totals(h))[2] == Decimal(0)


async def test_record_charges_what_a_refused_call_cost(h: Harness) -> None:
    await h.meter.grant("p1", Decimal("1"), None)
    await h.meter.record(call_record(cost="0.25", status=400, project="p1", key="k9"))
    await h.meter.flush()
    assert await h.meter.balance("p1") == Decimal("0.75")
    assert await h.meter.key_spend("k9") == Decimal("0.25")
    assert (await ledger_totals(h))[1:] == (Decimal("0.25"), Decimal("1"), Decimal("0.25"))


async def test_a_call_larger_than_a_whole_window_is_told_so_not_to_retry(h: Harness) -> None:
    # Waiting cannot help a call that reserves more than a TPM limit allows in a minute: a 400 that says
    # what to lower, not a 429 whose retry would be refused again (OpenAI's SDK retries 429s itself).
    for scope, limits in (
        ("the API key", {"key_limits": Limits(tpm=100)}),
        ("the project", {"project_limits": Limits(tpm=100)}),
        ("model upstream:test-model in the project", {"model_limits": Limits(tpm=100)}),
    ):
        with pytest.raises(InvalidRequest, match=f"{scope} is limited to 100 tokens per minute") as refused:
            await h.meter.admit(admission(tokens=101, **limits))
        assert "Lower max_tokens" in refused.value.message
    assert (await h.meter.admit(admission(key_limits=Limits(tpm=100), tokens=100))).tokens is not None
    with pytest.raises(RateLimited):  # the window is full now: this one only has to wait
        await h.meter.admit(admission(key_limits=Limits(tpm=100), tokens=100))


async def test_tpm_retry_after_waits_for_enough_tokens(h: Harness) -> None:
    limits = Limits(tpm=100)
    await h.meter.admit(admission(key_limits=limits, tokens=40))
    h.clock.advance(10)
    await h.meter.admit(admission(key_limits=limits, tokens=40))
    h.clock.advance(10)
    with pytest.raises(RateLimited) as refused:
        await h.meter.admit(admission(key_limits=limits, tokens=70))
    assert refused.value.retry_after == 50  # both earlier calls must leave: the second at 10 + 60 s
    assert refused.value.headers["x-ratelimit-remaining-tokens"] == "20"
    assert refused.value.headers["x-ratelimit-reset-tokens"] == "40s"
