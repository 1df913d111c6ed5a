"""The samples of a textfile-collector file (or of an exporter's page), parsed by Prometheus's
client library, for assertions that do not depend on number formatting or label order."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[str, float]:
    """`name{label="value",...}` (labels sorted by name, empty ones dropped as Prometheus drops
    them on ingestion) -> value, for every sample of the text."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):  # type: ignore[no-untyped-call]  # untyped in 0.16
        for sample in family.samples:
            pairs = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()) if v != "")
            found[f"{sample.name}{{{pairs}}}" if pairs else sample.name] = sample.value
    return found
