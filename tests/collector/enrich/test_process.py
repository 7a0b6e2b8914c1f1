# SPDX-License-Identifier: Apache-2.0
"""The process table: lineage, exits and the bounded graveyard."""

from __future__ import annotations

from collector.enrich.process import ProcessTable
from tests.factories import exec_event, exit_event, proc_event


def _table() -> ProcessTable:
    table = ProcessTable()
    table.apply(proc_event(1, 0, ("/sbin/init",), "/sbin/init"))
    table.apply(proc_event(100, 1, ("containerd-shim",), cgroup_id=1))
    table.apply(proc_event(200, 100, ("bash",), cgroup_id=2))
    table.apply(exec_event(["python", "agent.py"], exe="/usr/bin/python3", pid=300, ppid=200, cgroup_id=2))
    return table


def test_ancestors_parent_first_to_init() -> None:
    """Lineage runs parent first up to pid 1."""
    assert [p.pid for p in _table().ancestors(300)] == [200, 100, 1]


def test_ancestors_stop_at_the_container_boundary() -> None:
    """With a predicate, lineage stops at the last ancestor inside the container."""
    table = _table()
    assert [p.pid for p in table.ancestors(300, inside=lambda p: p.cgroup_id == 2)] == [200]


def test_exited_parent_keeps_the_lineage() -> None:
    """A parent that exited (child reparented to init) still appears, from the graveyard."""
    table = _table()
    table.apply(exit_event(200))
    assert 200 not in table
    assert [p.pid for p in table.ancestors(300)] == [200, 100, 1]
    assert table.get(200) is not None and table.get(200).exited  # type: ignore[union-attr]


def test_exec_replaces_the_image() -> None:
    """A new exec in the same pid replaces its argv and exe."""
    table = _table()
    table.apply(exec_event(["xmrig", "-o", "pool:3333"], exe="/tmp/xmrig", pid=300, ppid=200))
    proc = table.get(300)
    assert proc is not None and proc.args == ("xmrig", "-o", "pool:3333") and proc.exe == "/tmp/xmrig"


def test_cycles_and_bounds() -> None:
    """A ppid cycle ends the walk; the live and exited tables stay within their bounds."""
    table = ProcessTable(max_live=3, max_exited=2)
    table.apply(proc_event(10, 11))
    table.apply(proc_event(11, 10))
    assert [p.pid for p in table.ancestors(10)] == [11]
    for pid in range(20, 30):
        table.apply(proc_event(pid, 1))
        table.apply(exit_event(pid))
    assert len(table) <= 3 and sum(table.get(p) is not None for p in range(20, 30)) == 2
