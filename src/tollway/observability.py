"""Prometheus metrics, kept as plain counters on the hot path and rendered only when scraped.

prometheus-client's own Counter/Histogram take a lock and walk label dictionaries on every update;
here a finished call costs a few dict increments, and a custom collector turns the totals into
Prometheus families at scrape time (`GET /metrics`).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from tollway.money import to_dollars

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CallKey = tuple[str, str, str, str]  # surface, operation, backend, status


class Metrics(Collector):
    def __init__(self) -> None:
        self.calls: dict[CallKey, int] = defaultdict(int)
        self.tokens: dict[tuple[str, str], int] = defaultdict(int)  # (backend, direction)
        self.cost: dict[str, int] = defaultdict(int)  # backend -> 1e-10 dollars (`tollway.money`)
        self.latency_buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(
        self,
        surface: str,
        operation: str,
        backend: str | None,
        status: int,
        seconds: float,
        input_tokens: int,
        output_tokens: int,
        cost_units: int,
    ) -> None:
        name = backend or "none"
        self.calls[(surface, operation, name, str(status))] += 1
        if input_tokens:
            self.tokens[(name, "input")] += input_tokens
        if output_tokens:
            self.tokens[(name, "output")] += output_tokens
        if cost_units:
            self.cost[name] += cost_units
        self.latency_buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        calls = CounterMetricFamily(
            "tollway_calls",
            "Model calls by surface, operation, backend and HTTP status.",
            labels=["surface", "operation", "backend", "status"],
        )
        for key, count in list(self.calls.items()):
            calls.add_metric(list(key), count)
        yield calls
        tokens = CounterMetricFamily(
            "tollway_tokens", "Tokens by backend and direction.", labels=["backend", "direction"]
        )
        for (backend, direction), count in list(self.tokens.items()):
            tokens.add_metric([backend, direction], count)
        yield tokens
        cost = CounterMetricFamily(
            "tollway_cost_dollars", "Cost of calls in US dollars, by backend.", labels=["backend"]
        )
        for backend, units in list(self.cost.items()):
            cost.add_metric([backend], float(to_dollars(units)))
        yield cost
        yield self._latency()

    def _latency(self) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for bound, count in zip((*BUCKETS, float("inf")), self.latency_buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        histogram = HistogramMetricFamily(
            "tollway_call_duration_seconds", "Time from request to the end of the answer."
        )
        histogram.add_metric([], buckets, self.latency_sum)
        return histogram
