# SPDX-License-Identifier: Apache-2.0
"""The process table: lineage, exits and the bounded graveyard."""

from __future__ import annotations

from collector.enrich.process import ProcessTable
from tests.factories import connect_event, exec_event, exit_event, payload_event, proc_event


def _table() -> ProcessTable:
    table = ProcessTable()
    table.apply(proc_event(1, 0, ("/sbin/init",), "/sbin/init"))
    table.apply(proc_event(100, 1, ("containerd-shim",), cgroup_id=1))
    table.apply(proc_event(200, 100, ("bash",), cgroup_id=2))
    table.apply(exec_event(["python", "agent.py"], exe="/usr/bin/python3", pid=300, ppid=200, cgroup_id=2))
    return table


def _live(table: ProcessTable, pids: range) -> list[int]:
    return [pid for pid in pids if pid in table]


def _exited(table: ProcessTable, pids: range) -> list[int]:
    return [pid for pid in pids if pid not in table and table.get(pid) is not None]


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
    assert _exited(table, range(20, 30)) == [28, 29]  # the two that exited last


def test_the_live_table_evicts_the_oldest_first() -> None:
    """Past max_live, the process seen longest ago is forgotten first, and not kept as exited."""
    table = ProcessTable(max_live=3)
    for pid in range(10, 15):
        table.apply(proc_event(pid, 1))
    assert len(table) == 3 and _live(table, range(10, 15)) == [12, 13, 14]
    assert table.get(10) is None and table.get(11) is None


def test_any_event_of_a_process_keeps_it_live() -> None:
    """Eviction is by activity: a connect, payload or new exec moves the process to the back of the line."""
    table = ProcessTable(max_live=3)
    for pid in (10, 11, 12):
        table.apply(proc_event(pid, 1))
    table.apply(connect_event(pid=10))  # order now 11, 12, 10
    table.apply(proc_event(13, 1))
    assert _live(table, range(10, 20)) == [10, 12, 13]
    table.apply(payload_event(b"x", pid=12))  # 10, 13, 12
    table.apply(exec_event(["sh"], pid=10))  # 13, 12, 10
    table.apply(proc_event(14, 1))
    table.apply(proc_event(15, 1))
    assert _live(table, range(10, 20)) == [10, 14, 15]


def test_events_of_unknown_or_exited_processes_change_nothing() -> None:
    """An event from a pid the table does not hold as live neither adds it nor saves it from eviction."""
    table = ProcessTable(max_live=2, max_exited=2)
    table.apply(proc_event(10, 1))
    table.apply(exit_event(10))
    table.apply(proc_event(11, 1))
    table.apply(proc_event(12, 1))
    table.apply(connect_event(pid=10))
    table.apply(payload_event(b"x", pid=99))
    assert _live(table, range(1, 100)) == [11, 12] and _exited(table, range(1, 100)) == [10]
    table.apply(exit_event(99))  # never seen: nothing to bury
    assert _exited(table, range(1, 100)) == [10]


def test_the_graveyard_drops_the_earliest_exit_first() -> None:
    """Past max_exited, the process that exited first is forgotten first, whatever order they started in."""
    table = ProcessTable(max_exited=2)
    for pid in (10, 11, 12):
        table.apply(proc_event(pid, 1))
    for pid in (12, 10, 11):
        table.apply(exit_event(pid))
    assert _exited(table, range(10, 13)) == [10, 11] and table.get(12) is None


def test_a_reused_pid_leaves_the_graveyard() -> None:
    """A new process with an exited process's pid is live again and no longer counts against the graveyard."""
    table = ProcessTable(max_exited=2)
    for pid in (10, 11, 12):
        table.apply(proc_event(pid, 1))
        table.apply(exit_event(pid))
    table.apply(exec_event(["xmrig"], exe="/tmp/xmrig", pid=12, ppid=1))
    proc = table.get(12)
    assert 12 in table and proc is not None and not proc.exited and proc.exe == "/tmp/xmrig"
    table.apply(proc_event(13, 1))
    table.apply(exit_event(13))
    assert _exited(table, range(10, 14)) == [11, 13]
