# SPDX-License-Identifier: Apache-2.0
"""Events survive the wire format; malformed wire items are refused with a reason."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from collector.source.wire import from_wire, to_wire
from probes.events import PayloadEvent
from tests.factories import cgroup_event, connect_event, exec_event, exit_event, payload_event, proc_event

EVENTS = [
    exec_event(["ssh", "-R", "8080:l:80", "h"], exe="/usr/bin/ssh"),
    dataclasses.replace(
        exec_event(["ssh", "h"], exe="/usr/bin/ssh"),
        ssh_config=("RemoteForward 8 l:8", "Tunnel yes"),
        ssh_config_from=("/root/.ssh/config:3", "/etc/ssh/ssh_config.d/x.conf:1"),
    ),
    exit_event(5),
    connect_event(ret=-111),
    payload_event(b'{"id":1}\n\xff'),
    payload_event(b"x", proto="tcp", saddr="10.0.0.5", sport=40112),
    proc_event(1, 0, ("/sbin/init",)),
    cgroup_event(77, "/system.slice/x.scope"),
]


@pytest.mark.parametrize("event", EVENTS, ids=[type(e).__name__ for e in EVENTS])
def test_roundtrip_through_msgpack(event: object) -> None:
    """to_wire -> msgpack -> from_wire gives back an equal event."""
    packed = msgpack.packb(to_wire(event), use_bin_type=True)  # type: ignore[arg-type]
    assert from_wire(msgpack.unpackb(packed, raw=False)) == event


@pytest.mark.parametrize(
    "item",
    [
        None,
        [],
        ["nope", 1],
        ["exit", 1, 2],
        ["exit", "x", 1, 1, 1, 1, 1, "c"],
        ["exit", True, 1, 1, 1, 1, 1, "c"],
        ["exec", 1, 1, 1, 1, 1, 1, "c", "f", [1, 2], 0, None],
        ["exec", 1, 1, 1, 1, 1, 1, "c", "f", ["a"], 0, None, ["RemoteForward 1 l:1", 2]],
        ["exec", 1, 1, 1, 1, 1, 1, "c", "f", ["a"], 0, None, [], "not a list"],
        ["payload", 1, 1, 1, 1, 1, 1, "c", 5, "ipv4", "1.2.3.4", 3333, "write", 3, "not bytes"],
        ["payload", 1, 1, 1, 1, 1, 1, "c", 5, "ipv4", "1.2.3.4", 3333, "write", 3, b"x", "tcp", "1.1.1.1", "80"],
        ["payload", 1, 1, 1, 1, 1, 1, "c", 5, "ipv4", "1.2.3.4", 3333, "write", 3, b"x", None, None, None, 0],
        ["connect", 1, 1, 1, 1, 1, 1, "c", 5, "ipv4", "1.2.3.4", 3333],
    ],
)
def test_malformed_wire_items(item: object) -> None:
    """Wrong kinds, counts or field types raise ValueError, never TypeError."""
    with pytest.raises(ValueError):
        from_wire(item)


def test_an_event_recorded_before_the_local_end_fields_still_reads() -> None:
    """Fields added with defaults may be missing at the end of an item (recordings from earlier agents)."""
    old = ["payload", 1, 2, 3, 4, 5, 6, "c", 5, "ipv4", "1.2.3.4", 3333, "write", 3, b"abc"]
    event = from_wire(old)
    assert isinstance(event, PayloadEvent) and event.data == b"abc" and event.sport is None
    assert from_wire(["connect", 1, 2, 3, 4, 5, 6, "c", 5, "ipv4", "1.2.3.4", 3333, -111]).proto is None  # type: ignore[attr-defined]
    exec_ = from_wire(["exec", 1, 2, 3, 4, 5, 6, "c", "/usr/bin/ssh", ["ssh", "h"], 0, "/usr/bin/ssh"])
    assert exec_.ssh_config == () and exec_.ssh_config_from == ()  # type: ignore[attr-defined]
