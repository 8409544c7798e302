"""The fast renderer against prometheus_client's own, and the metric table's hygiene."""

from __future__ import annotations

import gzip
import math
import re

from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_om
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.collectors.host import HostCollector
from edge_agent.metrics import METRICS
from edge_agent.model import Reading, Snapshot, Update
from edge_agent.sinks import exposition
from edge_agent.sinks.promclient import registry_for
from edge_agent.sinks.prometheus import MetricStore


def parsed(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample_snapshots() -> list[Snapshot]:
    host = Snapshot("host", "h", 0.0, True, tuple(HostCollector("h").read()))
    tricky = Snapshot(
        "agent",
        "x",
        0.0,
        True,
        (
            Reading("edge_agent_collector_up", 1.0, (("collector", 'we"ird\\name\nx'),)),
            Reading("edge_agent_collector_duration_seconds", math.inf, (("collector", 'we"ird\\name\nx'),)),
            Reading("edge_agent_collector_errors_total", 12.0, (("collector", 'we"ird\\name\nx'),)),
            # One character needing escape at a time, too: the renderer skips the escaping when none does.
            Reading("edge_agent_collector_up", 0.0, (("collector", 'quote"only'),)),
            Reading("edge_agent_collector_up", 0.0, (("collector", "back\\slash"),)),
            Reading("edge_agent_collector_up", 0.0, (("collector", "new\nline"),)),
            Reading("not_in_table", 1.0),
        ),
    )
    return [host, tricky]


def test_fast_renderer_matches_prometheus_client() -> None:
    snaps = sample_snapshots()
    ours = exposition.render_snapshots(snaps).decode()
    reference = generate_latest(registry_for(lambda: snaps)).decode()
    assert parsed(ours) == parsed(reference)
    assert "not_in_table" not in ours


def test_openmetrics_matches_prometheus_client() -> None:
    snaps = sample_snapshots()
    ours = exposition.render_snapshots(snaps, openmetrics=True).decode()
    reference = generate_latest_om(registry_for(lambda: snaps)).decode()
    assert ours.endswith("# EOF\n")
    ours_types = set(re.findall(r"^# TYPE .*$", ours, re.M))
    ref_types = set(re.findall(r"^# TYPE .*$", reference, re.M))
    assert ours_types == ref_types


def test_metric_table_hygiene() -> None:
    for name, row in METRICS.items():
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
        assert row.help and row.help.endswith("."), name
        assert (row.type == "counter") == name.endswith("_total"), name
        if row.unit:
            assert row.family.endswith("_" + row.unit), name
        assert len(set(row.labels)) == len(row.labels), name


def test_host_readings_are_all_in_the_table() -> None:
    for r in HostCollector("h").read():
        row = METRICS[r.key]
        assert tuple(k for k, _ in r.labels) == row.labels, r


def test_values_format() -> None:
    assert exposition.format_value(3.0) == "3"
    assert exposition.format_value(0.5) == "0.5"
    assert exposition.format_value(math.nan) == "NaN"
    assert exposition.format_value(-math.inf) == "-Inf"
    assert exposition.format_value(1e20) == "1e+20"


def test_store_serves_parts_and_gzip_decodes_to_the_plain_body() -> None:
    snaps = sample_snapshots()
    store = MetricStore()
    store.apply(Update(snapshots=tuple(snaps)))
    extra = [Snapshot("agent", "late", 0.0, True, (Reading("edge_agent_collector_up", 1.0, (("collector", "z"),)),))]
    for openmetrics in (False, True):
        plain = store.render(openmetrics=openmetrics, gzipped=False, extra=extra)
        assert len(plain) > 1  # a part per family, then the extra
        whole = b"".join(plain)
        assert whole.startswith(exposition.render_snapshots(snaps, openmetrics=openmetrics).removesuffix(b"# EOF\n"))
        # Two gzip members back to back (the cached body, then the extra): one stream to any reader.
        assert gzip.decompress(b"".join(store.render(openmetrics=openmetrics, gzipped=True, extra=extra))) == whole
    # Nothing changed: the same cached parts.
    first = store.render(openmetrics=False, gzipped=True, extra=[])
    assert all(a is b for a, b in zip(first, store.render(openmetrics=False, gzipped=True, extra=[]), strict=True))
