"""`bench.instructions` reads the count from the dump `callgrind_control -d` just wrote, not an older one."""

from __future__ import annotations

from pathlib import Path

from bench.instructions import dumped_total


def test_the_new_dump_of_that_process_is_read(tmp_path: Path) -> None:
    (tmp_path / "tollway.callgrind.41.1").write_text("events: Ir\nsummary: 999\n")  # an earlier dump
    (tmp_path / "tollway.callgrind.7.2").write_text("events: Ir\nsummary: 555\n")  # another process
    before = set(tmp_path.glob("tollway.callgrind.41*"))
    (tmp_path / "tollway.callgrind.41.2").write_text("events: Ir\nfn=x\n0 5\ntotals: 123456\n")
    assert dumped_total(tmp_path, "tollway", 41, before) == 123456
