"""`bench.metering_path` still drives the real metering path (it would silently measure nothing if the
pipeline's interface moved on without it). Its figures are not asserted: timings stay out of tests."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench.metering_path", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_timed_rounds_report_on_off_and_the_path() -> None:
    done = run("--calls", "400", "--rounds", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("400 calls × 2 rounds")
    rows = [line.split()[:2] for line in lines[1:4]]
    assert rows == [["metering", "on"], ["metering", "off"], ["metering", "path"]]
    assert charged(lines[4]) > 0  # the metered calls really went through the meter


def test_the_run_callgrind_counts_charges_only_when_metered() -> None:
    metered, unmetered = run("--work", "on", "--calls", "400"), run("--work", "off", "--calls", "400")
    assert metered.returncode == 0 and unmetered.returncode == 0, metered.stderr + unmetered.stderr
    assert charged(metered.stdout) > 0
    assert charged(unmetered.stdout) == 0


def charged(text: str) -> Decimal:
    """The dollars in the tool's "charged $X to the bench project" line."""
    return Decimal(text.split("charged $", 1)[1].split()[0])
