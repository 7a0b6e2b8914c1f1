# SPDX-License-Identifier: Apache-2.0
"""mining.stratum on first payloads: what it quotes as evidence, and what it leaves alone."""

from __future__ import annotations

import dataclasses

from collector.detect import State
from collector.detect.mining.stratum import StratumDetector
from collector.enrich.process import ProcessTable
from tests.collector.detect.protocols.test_stratum import XMRIG_AGENT, XMRIG_LOGIN
from tests.factories import exec_event, payload_event

STATE = State(ProcessTable())
DETECT = StratumDetector().detect


def test_a_pool_login_is_one_finding_with_its_dialect_agent_and_payload() -> None:
    """An XMRig login raises one critical finding naming the pool, the dialect, the miner's agent and the bytes."""
    event = payload_event(XMRIG_LOGIN, daddr="198.51.100.20", dport=443, comm="kworker/0:1", pid=31337)
    (finding,) = DETECT(event, STATE)
    assert finding.rule.id == "mining.stratum" and finding.rule.severity.value == "critical"
    assert finding.summary == (
        f"kworker/0:1 (pid 31337) logged in to a mining pool at 198.51.100.20:443: cryptonote login ({XMRIG_AGENT})"
    )
    assert finding.evidence == {
        "signature": "cryptonote:login",
        "dialect": "cryptonote",
        "method": "login",
        "agent": XMRIG_AGENT,
        "payload_head": XMRIG_LOGIN.decode(),
        "payload_truncated": False,
        "syscall": "write",
    }


def test_a_capture_cut_short_says_so_and_undecodable_bytes_stay_visible() -> None:
    """A payload longer than the capture is marked truncated; bytes that are not UTF-8 show as escapes."""
    head = b'{"id": 1, "method": "mining.subscribe", "params": ["\xff"]}\n'
    event = dataclasses.replace(payload_event(head, dport=3333), len_raw=4096)
    (finding,) = DETECT(event, STATE)
    assert finding.evidence["payload_truncated"] is True
    assert finding.evidence["payload_head"].endswith('["\\xff"]}\n')
    assert "(" not in finding.summary.split(": ", 1)[1]  # no agent: none is claimed


def test_other_traffic_and_other_events_raise_nothing() -> None:
    """HTTP, TLS and SSH first bytes, and events that are not payloads, are not mining."""
    for data in (b"GET / HTTP/1.1\r\n\r\n", bytes.fromhex("160301") + bytes(60), b"SSH-2.0-OpenSSH_9.2p1\r\n"):
        assert DETECT(payload_event(data), STATE) == []
    assert DETECT(exec_event(["xmrig", "-o", "pool:3333"], exe="/tmp/xmrig"), STATE) == []
