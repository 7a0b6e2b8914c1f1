# SPDX-License-Identifier: Apache-2.0
"""mining.stratum: a process's first bytes on a new connection are a mining-pool login."""

from __future__ import annotations

from collector.detect import Finding, Rule, Severity, State
from collector.detect.protocols.stratum import classify
from probes.events import Event, Kind, PayloadEvent

RULE = Rule(
    id="mining.stratum",
    category="mining",
    severity=Severity.CRITICAL,
    description=(
        "The first bytes a process sent on a TCP connection it opened are a mining-pool "
        "JSON-RPC call: Stratum v1 (mining.subscribe/authorize/submit/configure), "
        "NiceHash EthereumStratum/1.0.0, EthereumStratum/2.0.0 (mining.hello), eth-proxy "
        "(eth_submitLogin, eth_getWork) or CryptoNote/XMRig (login with an agent, submit with "
        "job_id and nonce, getjob, keepalived). Matches the protocol, not the binary name, so "
        "renamed miners are caught. Known false positives: a Stratum proxy or pool software "
        "under test on the node. Bypasses: TLS to the pool (stratum+ssl), a SOCKS or HTTP "
        "proxy (the first bytes are the proxy handshake), Stratum v2 (binary, encrypted), "
        "getwork over HTTP, sockets connected by another process, io_uring sends."
    ),
    tags=("maturity_stable", "host", "container", "network", "mitre_impact", "T1496"),
    consumes=frozenset({Kind.PAYLOAD}),
)


class StratumDetector:
    rule = RULE

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, PayloadEvent):
            return []
        match = classify(event.data)
        if match is None:
            return []
        agent = f" ({match.agent})" if match.agent else ""
        summary = (
            f"{event.comm} (pid {event.tgid}) logged in to a mining pool at "
            f"{event.daddr}:{event.dport}: {match.dialect} {match.method}{agent}"
        )
        evidence = {
            "signature": f"{match.dialect}:{match.method}",
            "dialect": match.dialect,
            "method": match.method,
            "agent": match.agent,
            "payload_head": event.data.decode("utf-8", "backslashreplace"),
            "payload_truncated": event.truncated,
            "syscall": event.syscall,
        }
        return [Finding(RULE, event, summary, evidence)]
