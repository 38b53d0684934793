"""The shipped monitoring/ files: promtool checks and rule unit tests, and metric names that exist."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from exporter_support import ROOT

from pooltop.exporter.metrics import METRICS, SYSTEM

MONITORING = os.path.join(ROOT, "monitoring")
RULES = os.path.join(MONITORING, "pooltop-rules.yml")
RULE_TESTS = os.path.join(MONITORING, "pooltop-rules.test.yml")
CONFIG = os.path.join(MONITORING, "prometheus.yml")
DASHBOARD = os.path.join(MONITORING, "grafana", "pooltop.json")

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install --no-install-recommends prometheus)",
)

EXPOSED = {spec.exposed for spec in METRICS}


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    out = subprocess.run([PROMTOOL, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    assert "SUCCESS" in promtool("check", "rules", RULES)


@needs_promtool
def test_promtool_rule_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", RULE_TESTS)


@needs_promtool
def test_promtool_checks_the_scrape_config() -> None:
    assert "SUCCESS" in promtool("check", "config", CONFIG)


def referenced_metrics(text: str) -> set[str]:
    """pooltop_* names in PromQL text; the dashboard's pooltop_system_(a|b)_bytes regex is expanded."""
    names = set()
    for alternatives in re.findall(r"pooltop_system_\(([a-z_|]+)\)_bytes", text):
        names |= {f"pooltop_system_{a}_bytes" for a in alternatives.split("|")}
    text = re.sub(r"pooltop_system_\([a-z_|]+\)_bytes", "", text)
    names |= set(re.findall(r"\bpooltop_[a-z0-9_]*[a-z0-9]\b", text))
    return names


def dashboard_exprs() -> list[str]:
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    return exprs


def test_dashboard_and_rules_use_only_metrics_the_exporter_has() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    with open(RULES) as f:
        rules = f.read()
    used = referenced_metrics("\n".join(exprs)) | referenced_metrics(rules)
    assert used - EXPOSED == set()
    assert {"pooltop_pool_bytes", "pooltop_pool_leak_level", "pooltop_up"} <= used


def test_dashboard_is_importable_json() -> None:
    with open(DASHBOARD) as f:
        dash = json.load(f)
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("top tags by bytes", "growth", "leak level", "totals"):
        assert topic in titles


def test_monitoring_readme_lists_every_metric() -> None:
    with open(os.path.join(MONITORING, "README.md")) as f:
        readme = f.read()
    system = {spec.exposed for spec in SYSTEM.values()}
    for name in EXPOSED - system:
        assert f"`{name}" in readme or f"{name}`" in readme, name
    for field in SYSTEM:  # every Totals byte figure
        assert f"`{field}`" in readme, field
