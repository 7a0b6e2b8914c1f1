# SPDX-License-Identifier: Apache-2.0
"""Detector metadata and indexing, as the pipeline relies on them."""

from __future__ import annotations

import re

from collector.detect import Severity, default_detectors, index
from probes.events import Kind


def test_metadata_is_complete() -> None:
    """Every detector has a dotted id, a category, an honest description, a maturity and a MITRE tag."""
    for detector in default_detectors():
        rule = detector.rule
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", rule.id)
        assert rule.id.split(".")[0] == rule.category
        assert isinstance(rule.severity, Severity)
        assert "false positive" in rule.description.lower() and "bypass" in rule.description.lower()
        assert rule.tags[0].startswith("maturity_")
        assert any(re.fullmatch(r"T\d{4}(\.\d{3})?", t) for t in rule.tags)
        assert rule.consumes


def test_index_offers_each_kind_only_its_detectors() -> None:
    """Each kind reaches only the detectors that consume it: payloads the wire rules, execs the argv rules."""
    by_kind = index(default_detectors())
    assert [d.rule.id for d in by_kind[Kind.PAYLOAD]] == ["mining.stratum", "tunnel.tool", "tunnel.ssh_egress"]
    assert [d.rule.id for d in by_kind[Kind.EXEC]] == [
        "tunnel.ssh_reverse",
        "tunnel.ssh_forward",
        "tunnel.tool",
        "gpu.miner_process",
    ]
    assert by_kind[Kind.EXIT] == []
