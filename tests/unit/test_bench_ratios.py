"""The bench's ratio logic: metering medians over interleaved rounds, info rows, the latency checks.

Pure functions over hand-made records: nothing is started and no timing is asserted.
"""

from __future__ import annotations

from typing import Any

import pytest
from bench import ratios, rounds
from bench.upstream import parse_range_ms


def run(target: str, workload: str, conc: int, **fields: Any) -> dict[str, Any]:
    return {"kind": "run", "target": target, "workload": workload, "conc": conc, "errors": 0, **fields}


def round_(target: str, workload: str, number: int, cpu: float | None, errors: int = 0) -> dict[str, Any]:
    return {
        "kind": "round",
        "target": target,
        "workload": workload,
        "conc": 16,
        "round": number,
        "position": 1,
        "cpu_us_per_req": cpu,
        "errors": errors,
    }


def by_name(checks: list[ratios.Check], start: str) -> ratios.Check:
    found = [c for c in checks if c.name.startswith(start)]
    assert len(found) == 1, [c.name for c in checks]
    return found[0]


def metering_check(records: list[dict[str, Any]], start: str) -> ratios.Check:
    return by_name(ratios.metering_checks(ratios.Figures(records)), start)


def test_median_and_round_cpu_order_by_round_and_skip_missing_figures() -> None:
    records = [
        round_("tollway", "chat", 3, 300.0),
        round_("tollway", "chat", 1, 100.0),
        round_("tollway", "chat", 2, None),  # no 2xx in that run: no figure
        round_("tollway", "stream", 1, 999.0),
        run("tollway", "chat", 16, cpu_us_per_req=5.0),  # a normal run is not a round
    ]
    assert ratios.round_cpu(records, "tollway", "chat") == [100.0, 300.0]
    assert ratios.median([3.0, 1.0, 2.0]) == 2.0
    assert ratios.median([1.0, 2.0]) == 1.5
    assert ratios.median([]) is None


def test_overhead_pct() -> None:
    assert ratios.overhead_pct(115.0, 100.0) == pytest.approx(15.0)
    assert ratios.overhead_pct(None, 100.0) is None
    assert ratios.overhead_pct(100.0, 0.0) is None


def test_metering_checks_use_the_median_of_the_paired_rounds() -> None:
    records = [
        run("tollway", "chat", 16, cpu_us_per_req=200.0),  # single runs: +100 %, ignored
        run("tollway-nometer", "chat", 16, cpu_us_per_req=100.0),
    ]
    for number, (on, off) in enumerate([(110.0, 100.0), (130.0, 90.0), (112.0, 100.0)], 1):
        records += [round_("tollway", "chat", number, on), round_("tollway-nometer", "chat", number, off)]
    check = metering_check(records, "metering on (embedded) vs off: extra CPU per chat")
    # per round +10 %, +44.4 %, +12 %: the median of the paired overheads
    assert check.value == pytest.approx(12.0)
    assert "median of 3 interleaved rounds, paired" in check.name
    assert check.verdict == "PASS"


def test_metering_checks_fall_back_to_single_runs_without_rounds() -> None:
    records = [
        run("tollway", "stream", 16, cpu_us_per_req=130.0),
        run("tollway-nometer", "stream", 16, cpu_us_per_req=100.0),
    ]
    check = metering_check(records, "metering on (embedded) vs off: extra CPU per stream")
    assert check.value == pytest.approx(30.0)
    assert "single runs" in check.name
    assert check.verdict == "FAIL"


def test_metering_check_counts_rounds_and_errors_per_side() -> None:
    records = [
        round_("tollway-scaleout", "chat", 1, 120.0),
        round_("tollway-scaleout", "chat", 2, 120.0, errors=2),
        round_("tollway-nometer", "chat", 1, 100.0),
    ]
    check = metering_check(records, "metering on (PostgreSQL + Redis) vs off: extra CPU per chat")
    assert "median of 1 interleaved rounds, paired" in check.name  # round 2 has no metering-off side
    assert check.detail == "2 errors in its rounds"


def test_info_rows_are_never_pass_or_fail() -> None:
    check = ratios.Check("x", 99.0, "–", None, " ms", info=True)
    assert check.verdict == "info"
    assert ratios.Check("x", None, "≤ 1", None).verdict == "n/a"


def test_p99_target_is_judged_on_chat_latency_and_saturated_rows_are_info() -> None:
    records = [
        {"kind": "meta", "latency_ms": [40, 160]},
        run("direct", "chat-latency", 64, p99_ms=149.0),
        run("tollway", "chat-latency", 64, p99_ms=151.5),
        run("direct", "chat-latency", 1, p50_ms=100.0),
        run("tollway", "chat-latency", 1, p50_ms=101.0),
        run("direct", "chat", 64, p99_ms=2.0),
        run("floor", "chat", 64, p99_ms=22.0),
        run("tollway", "chat", 64, p99_ms=24.0),
    ]
    checks = ratios.latency_checks(ratios.Figures(records), "tollway")
    judged = by_name(checks, "chat with a 40-160 ms upstream (chat-latency): added p99 at c=64")
    assert judged.value == pytest.approx(2.5)
    assert judged.verdict == "PASS"
    p50 = by_name(checks, "chat with a 40-160 ms upstream (chat-latency): added p50 at c=1")
    assert (p50.value, p50.verdict) == (pytest.approx(1.0), "info")
    saturated = by_name(checks, "chat on the µs mock, saturated closed loop (queueing): added p99 at c=64")
    assert (saturated.value, saturated.verdict) == (pytest.approx(22.0), "info")
    over_floor = by_name(checks, "chat on the µs mock, saturated closed loop (queueing): p99 at c=64 over")
    assert (over_floor.value, over_floor.verdict) == (pytest.approx(2.0), "info")


def test_c1_latency_is_judged_with_the_floors_own_share_beside_it() -> None:
    records = [
        {"kind": "meta", "latency_ms": [40, 160]},
        run("direct", "chat", 1, p50_ms=0.03),
        run("floor", "chat", 1, p50_ms=0.55),
        run("tollway", "chat", 1, p50_ms=0.73),
    ]
    checks = ratios.latency_checks(ratios.Figures(records), "tollway")
    judged = by_name(checks, "chat: added p50 at c=1 vs direct")
    assert (judged.value, judged.verdict) == (pytest.approx(0.70), "FAIL")
    floor = by_name(checks, "chat: the floor's added p50 at c=1")
    assert (floor.value, floor.verdict) == (pytest.approx(0.52), "info")


def test_error_check_includes_the_rounds() -> None:
    records = [run("tollway", "chat", 16), round_("tollway", "chat", 1, 100.0, errors=3)]
    (check,) = ratios.error_checks(ratios.Figures(records), ["tollway"])
    assert check.name == "tollway: errors over all runs and metering rounds"
    assert check.verdict == "FAIL"


def test_rotation_puts_each_target_first_once() -> None:
    names = ["a", "b", "c"]
    orders = [rounds.rotated(names, i) for i in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert rounds.rotated([], 2) == []
    assert rounds.round_targets(["direct", "tollway-scaleout", "tollway"]) == ["tollway", "tollway-scaleout"]


def test_round_table_shows_each_round_and_the_medians() -> None:
    records = [
        round_("tollway", "chat", 1, 110.0),
        round_("tollway", "chat", 2, 120.0),
        round_("tollway-nometer", "chat", 1, 100.0),
        round_("tollway-nometer", "chat", 2, 100.0),
    ]
    text = "\n".join(rounds.section(records))
    assert "| chat | tollway | 110 | 120 | 115 | 110–120 |" in text
    assert "| chat | *extra CPU, tollway vs tollway-nometer* | +10.0 % | +20.0 % | +15.0 % |" in text
    assert rounds.section([run("tollway", "chat", 16)]) == []


def test_latency_range_parsing() -> None:
    assert parse_range_ms("50-150") == (50.0, 150.0)
    assert parse_range_ms("100") == (100.0, 100.0)
    with pytest.raises(ValueError):
        parse_range_ms("150-50")


def worker_check(records: list[dict[str, Any]], start: str) -> ratios.Check:
    return by_name(ratios.worker_checks(ratios.Figures(records)), start)


def test_workers_are_judged_against_what_the_machine_can_carry() -> None:
    # One worker: 4,000 calls/s, each costing the 2-core machine 400 µs (1.6 cores busy): the machine
    # carries at most 5,000 calls/s, so 1.25x is the ceiling of the plain ratio, whatever the workers do.
    meta = {"kind": "meta", "cores": 2}
    one = run("tollway-scaleout", "chat", 64, rps=4000.0, machine_cpu_us_per_req=400.0, cpu_us_per_req=240.0)
    for two_rps, share, passed in ((4750.0, 95.0, True), (4400.0, 88.0, False)):
        two = run("tollway-w2", "chat", 64, rps=two_rps, machine_busy_cores=1.9, cpu_us_per_req=250.0)
        records = [meta, one, two]
        assert worker_check(records, "its ceiling").value == pytest.approx(1.25)
        check = worker_check(records, "--workers 2: share")
        assert check.value == pytest.approx(share) and check.passed is passed
        assert worker_check(records, "--workers 2 ÷ 1 worker").info


def test_a_machine_with_room_caps_the_ceiling_at_twice_one_worker() -> None:
    meta = {"kind": "meta", "cores": 8}
    one = run("tollway-scaleout", "chat", 64, rps=4000.0, machine_cpu_us_per_req=400.0)
    two = run("tollway-w2", "chat", 64, rps=6000.0)
    check = worker_check([meta, one, two], "--workers 2: share")
    assert check.value == pytest.approx(75.0) and check.passed is False  # 1.5x of a possible 2x
