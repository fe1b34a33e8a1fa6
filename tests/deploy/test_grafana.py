"""The Grafana dashboard and README's metrics only name metrics the worker exposes (a
family, such as a histogram, or one of its samples)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from worker.metrics import BatchStats
from worker.prometheus import WorkerMetrics, WorkerState

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "packflow-dashboard.json"
METRIC = re.compile(r"\bpackflow_[a-z_]+\b")


def exposed_sample_names() -> set[str]:
    metrics = WorkerMetrics(lambda: WorkerState(consumer_lag={("events", 0): 3}))
    stats = BatchStats(batch_size=2, records_in=2, records_out=1, outputs=1, dead_letters=1)
    stats.steps_ms = {"execute": 1.0}
    stats.latencies_ms = [5.0, 6.0]
    metrics.observe_batch(stats, [("execute", "ValueError")])
    text = metrics.render().decode()
    families = list(text_string_to_metric_families(text))
    return {s.name for f in families for s in f.samples} | {f.name for f in families}


def test_every_dashboard_query_names_exposed_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exposed = exposed_sample_names()
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert len(queries) >= 10
    named = {m for q in queries for m in METRIC.findall(q)}
    assert named, "the dashboard should query packflow metrics"
    assert sorted(named - exposed) == []
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_readme_promql_names_exposed_metrics():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Operating packflow", 1)[1].split("\n## ", 1)[0]
    named = set(METRIC.findall(section))
    assert len(named) >= 8
    assert sorted(named - exposed_sample_names()) == []
