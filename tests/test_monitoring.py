"""The Grafana dashboard and the Prometheus alert rules in deploy/monitoring, checked offline.

promtool (from Debian's prometheus package; `make test` unpacks it into the venv) checks the rules, runs
their unit tests (alerts.test.yaml: each alert fires on the series that should trigger it, not on healthy
ones) and parses every dashboard query. The names the queries use must be metrics the code exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "alerts.yaml"
# The consumer lag gauges the runtime's delivery work adds (by durable); listed until they are exported.
PENDING_METRICS = {"pressroom_consumer_pending", "pressroom_consumer_ack_pending"}


def promtool() -> str:
    found = shutil.which("promtool") or str(Path(sys.executable).parent / "promtool")
    if not Path(found).exists():
        pytest.skip("promtool is not installed (make test unpacks it from Debian's prometheus package)")
    return found


def run_promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queries() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def test_alert_rules_are_valid() -> None:
    result = run_promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_when_they_should_and_only_then() -> None:
    result = run_promtool("test", "rules", "alerts.test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "alerts.test.yaml").read_text()))
    alerts = {
        rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    }
    assert alerts == tested == {"PressroomJobsStuck", "PressroomConsumerLag", "PressroomHandlerErrors",
                                "PressroomDeadLetters"}  # fmt: skip


def test_a_broken_rule_is_caught(tmp_path: Path) -> None:
    """The check has teeth: a query that does not parse is refused."""
    broken = {"groups": [{"name": "x", "rules": [{"alert": "Broken", "expr": "sum(rate(x[5m])"}]}]}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert run_promtool("check", "rules", "broken.yaml", cwd=tmp_path).returncode != 0


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    # promtool parses queries inside rule files: each one becomes a recording rule.
    rules = [{"record": f"pressroom:dashboard_query_{i}", "expr": expr} for i, expr in enumerate(queries())]
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    result = run_promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_has_the_panels_an_operator_needs() -> None:
    board = dashboard()
    assert board["uid"] == "pressroom-overview" and board["schemaVersion"] >= 36
    titles = [panel["title"] for panel in board["panels"]]
    for needed in (
        "Jobs per second",
        "Stage latency",
        "Consumer lag",
        "WebSocket connections",
        "Errors",
        "cost",
    ):
        assert any(needed.lower() in title.lower() for title in titles), f"no panel for {needed}"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", "panels follow the datasource variable"
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        area = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        refs = [t["refId"] for t in panel["targets"]]
        assert panel["targets"] and len(refs) == len(set(refs))


def exported_metrics() -> set[str]:
    """Metric names the code defines (prometheus_client adds _total to counters)."""
    names: set[str] = set()
    for path in [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]:
        for kind, name in re.findall(r"(Counter|Gauge|Histogram)\(\s*\"(pressroom_\w+)\"", path.read_text()):
            names.add(f"{name.removesuffix('_total')}_total" if kind == "Counter" else name)
            if kind == "Histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_queries_use_metrics_the_code_exports(source: str) -> None:
    text = " ".join(queries()) if source == "dashboard" else ALERTS.read_text()
    used = set(re.findall(r"\bpressroom_[a-z_]+\b", text))
    exported = exported_metrics()
    assert {"pressroom_messages_total", "pressroom_cost_usd_total"} <= exported
    unknown = used - exported - PENDING_METRICS
    assert not unknown, f"{source} queries metrics nothing exports: {sorted(unknown)}"
