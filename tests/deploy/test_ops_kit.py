"""deploy/: the dashboard and the alert rules only use metrics the code exports; the units and files parse."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import yaml

from host_proxy.metrics import ProxyMetrics
from relayer.observability import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OUR_METRIC = re.compile(r"\b(?:memwal|host_proxy)_[a-z0-9_]+\b")


def exported_series() -> set[str]:
    """Every sample name the relayer and the host proxy can expose (counters as *_total, histograms' parts)."""
    names = set()
    for registry in (Metrics().registry, ProxyMetrics().registry):
        for family in registry.collect():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "memwal-enclave.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_every_metric_in_the_dashboard_and_the_alerts_is_exported():
    exported = exported_series()
    used = {name for expression in dashboard_expressions() + [rule["expr"] for rule in alert_rules()]
            for name in OUR_METRIC.findall(expression)}  # fmt: skip
    assert used, "no metric found: the pattern is wrong"
    assert used - exported == set()


def test_the_dashboard_covers_both_processes_and_every_alert_says_what_it_means():
    used = {name for expression in dashboard_expressions() for name in OUR_METRIC.findall(expression)}
    assert any(name.startswith("memwal_") for name in used) and any(name.startswith("host_proxy_") for name in used)
    for rule in alert_rules():
        assert rule["alert"].startswith("Memwal") and rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in ("page", "ticket")


def test_units_allocator_and_watchdog():
    for unit in (DEPLOY / "systemd").iterdir():
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string(unit.read_text())
        assert "Unit" in parser, unit.name
    host_proxy = (DEPLOY / "systemd" / "memwal-host-proxy.service").read_text()
    assert "-m host_proxy --manifest /etc/memwal/manifest.toml" in host_proxy
    allocator = yaml.safe_load((DEPLOY / "allocator.yaml").read_text())
    assert set(allocator) == {"memory_mib", "cpu_count"} and allocator["memory_mib"] >= 656
    watchdog = DEPLOY / "bin" / "memwal-enclave-watchdog"
    assert watchdog.stat().st_mode & 0o111 and "systemctl restart memwal-enclave.service" in watchdog.read_text()
