"""Metrics for the node exporter's textfile collector, rendered by Prometheus's client library
(Debian's python3-prometheus-client on the machines, installed by the roles that ship a program
importing this): its escaping and number format, not ours."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vpsfleet_agents.atomic import write_atomic


class Gauges(Collector):
    """The gauge families of one file, written in the order they were declared."""

    def __init__(self) -> None:
        self._families: list[GaugeMetricFamily] = []

    def family(self, name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
        """A new family; fill it with `add_metric([label values...], value)`."""
        gauge = GaugeMetricFamily(name, documentation, labels=list(labels))
        self._families.append(gauge)
        return gauge

    def single(self, name: str, documentation: str, value: float) -> None:
        """A family of one unlabelled sample."""
        self.family(name, documentation).add_metric([], value)

    def collect(self) -> Iterable[Metric]:
        return list(self._families)

    def text(self) -> str:
        """The text exposition format (0.0.4), as the collector reads it."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return generate_latest(registry).decode()


def write(path: str | os.PathLike[str], gauges: Gauges) -> None:
    """Replace the collector's file whole (it may read at any moment), world-readable."""
    write_atomic(path, gauges.text(), 0o644)
