"""Reading a Prometheus over its HTTP API (`/api/v1/query`), with the standard library only.

Every answer is checked against the API's documented shape: anything else (an HTML page, a
proxy's error, truncated JSON, a sample that is not a number) is `PrometheusBadAnswer`, and a
Prometheus that cannot be reached is `PrometheusUnreachable`; neither ever escapes as a
traceback from the command.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

Labels = dict[str, str]


class PrometheusError(Exception):
    pass


class PrometheusUnreachable(PrometheusError):
    pass


class PrometheusBadAnswer(PrometheusError):
    pass


@dataclass
class QueryCost:
    """What the report asked of Prometheus (the benchmark prints it)."""

    queries: int = 0
    bytes_read: int = 0
    samples: int = 0
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)


def _number(value: object, what: str) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise PrometheusBadAnswer(f"{what} is not a number: {str(value)[:40]!r}")
    try:
        return float(value)
    except ValueError:
        raise PrometheusBadAnswer(f"{what} is not a number: {str(value)[:40]!r}") from None


def _labels(item: object) -> Labels:
    if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
        raise PrometheusBadAnswer("a result without its labels")
    metric = item["metric"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metric.items()):
        raise PrometheusBadAnswer("labels that are not strings")
    return dict(metric)


def _pair(pair: object) -> tuple[int, float]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise PrometheusBadAnswer("a sample that is not [time, value]")
    ts = _number(pair[0], "a sample's time")
    if not math.isfinite(ts):
        raise PrometheusBadAnswer("a sample's time is not finite")
    return round(ts * 1000), _number(pair[1], "a sample's value")


class Prometheus:
    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PrometheusUnreachable(f"{url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.cost = QueryCost()

    def _query(self, expr: str, at_ms: int, kind: str) -> tuple[str, list[Any]]:
        body = urllib.parse.urlencode({"query": expr, "time": f"{at_ms / 1000:.3f}"}).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v1/query", data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
            if err.code not in (400, 422, 503):  # the API's own errors come with a JSON body
                raise PrometheusBadAnswer(f"{self.url} answered HTTP {err.code}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise PrometheusUnreachable(f"cannot reach Prometheus at {self.url}: {reason}") from None
        self.cost.seconds += time.perf_counter() - began
        self.cost.queries += 1
        self.cost.bytes_read += len(raw)
        self.cost.by_kind[kind] = self.cost.by_kind.get(kind, 0) + 1
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise PrometheusBadAnswer(f"{self.url} did not answer JSON: is it a Prometheus?") from None
        if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
            raise PrometheusBadAnswer(f"{self.url} did not answer as the Prometheus API does")
        if doc["status"] == "error":
            raise PrometheusBadAnswer(
                f"Prometheus refused the query: {str(doc.get('error'))[:200]}"
            )
        data = doc.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise PrometheusBadAnswer(f"{self.url} answered without a result")
        result_type = data.get("resultType")
        if not isinstance(result_type, str):
            raise PrometheusBadAnswer(f"{self.url} answered without a result type")
        return result_type, data["result"]

    def vector(self, expr: str, at_ms: int) -> list[tuple[Labels, float]]:
        """An instant query's vector: each series' labels and value."""
        result_type, result = self._query(expr, at_ms, "vector")
        if result_type != "vector":
            raise PrometheusBadAnswer(f"expected a vector, got {result_type[:20]!r}")
        out = []
        for item in result:
            labels = _labels(item)
            _ts, value = _pair(item.get("value"))
            out.append((labels, value))
        self.cost.samples += len(out)
        return out

    def matrix(self, expr: str, at_ms: int) -> list[tuple[Labels, list[tuple[int, float]]]]:
        """A range-vector selector evaluated at `at_ms`: each series' raw samples (ms, value)."""
        result_type, result = self._query(expr, at_ms, "matrix")
        if result_type != "matrix":
            raise PrometheusBadAnswer(f"expected a matrix, got {result_type[:20]!r}")
        out = []
        for item in result:
            labels = _labels(item)
            values = item.get("values")
            if not isinstance(values, list):
                raise PrometheusBadAnswer("a series without its samples")
            samples = [_pair(pair) for pair in values]
            self.cost.samples += len(samples)
            out.append((labels, samples))
        return out
