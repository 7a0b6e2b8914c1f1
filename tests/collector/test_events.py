# SPDX-License-Identifier: Apache-2.0
"""Events survive the wire format; malformed wire items are refused with a reason."""

from __future__ import annotations

import msgpack
import pytest

from collector.events import from_wire, to_wire
from tests.factories import cgroup_event, connect_event, exec_event, exit_event, payload_event, proc_event

EVENTS = [
    exec_event(["ssh", "-R", "8080:l:80", "h"], exe="/usr/bin/ssh"),
    exit_event(5),
    connect_event(ret=-111),
    payload_event(b'{"id":1}\n\xff'),
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
        ["payload", 1, 1, 1, 1, 1, 1, "c", 5, "ipv4", "1.2.3.4", 3333, "write", 3, "not bytes"],
    ],
)
def test_malformed_wire_items(item: object) -> None:
    """Wrong kinds, counts or field types raise ValueError, never TypeError."""
    with pytest.raises(ValueError):
        from_wire(item)
