# SPDX-License-Identifier: Apache-2.0
"""Events as msgpack-ready lists, the body of a recording: the kind, then the fields in declaration order."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from probes.events import EVENT_TYPES, Event, Kind

_FIELDS: dict[type[Event], tuple[str, ...]] = {cls: tuple(f.name for f in fields(cls)) for cls in EVENT_TYPES.values()}
# Fields a recording may leave out at the end of an event: those with defaults, added after version 1 began.
_REQUIRED: dict[type[Event], int] = {
    cls: sum(f.default is MISSING and f.default_factory is MISSING for f in fields(cls)) for cls in EVENT_TYPES.values()
}
_TUPLE_FIELDS = frozenset({"args", "ssh_config", "ssh_config_from", "environ"})  # msgpack gives lists back
# What a field may hold once decoded, by its annotation (probes/events.py uses only these).
_CHECKS: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, bytes),
    "str | None": lambda v: v is None or isinstance(v, str),
    "int | None": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "bool | None": lambda v: v is None or isinstance(v, bool),
    "tuple[str, ...]": lambda v: isinstance(v, tuple) and all(isinstance(a, str) for a in v),
}
_FIELD_CHECKS: dict[type[Event], tuple[Any, ...]] = {
    cls: tuple(_CHECKS[str(f.type)] for f in fields(cls)) for cls in EVENT_TYPES.values()
}


def to_wire(event: Event) -> list[Any]:
    """A msgpack-ready list: the kind, then the fields in declaration order."""
    return [event.KIND.value, *(getattr(event, name) for name in _FIELDS[type(event)])]


def from_wire(item: object) -> Event:
    """Inverse of to_wire; raises ValueError on anything that is not a valid event."""
    if not isinstance(item, list) or not item:
        raise ValueError("event is not a non-empty list")
    try:
        cls = EVENT_TYPES[Kind(item[0])]
    except (ValueError, TypeError):
        raise ValueError(f"unknown event kind {item[0]!r}") from None
    values = item[1:]
    if not _REQUIRED[cls] <= len(values) <= len(_FIELDS[cls]):
        raise ValueError(f"{cls.KIND.value} event has {len(values)} fields, expected {len(_FIELDS[cls])}")
    names = _FIELDS[cls][: len(values)]
    kwargs: dict[str, Any] = {
        n: tuple(v) if n in _TUPLE_FIELDS and isinstance(v, list) else v for n, v in zip(names, values, strict=True)
    }
    for (name, value), check in zip(kwargs.items(), _FIELD_CHECKS[cls], strict=False):
        if not check(value):
            raise ValueError(f"{cls.KIND.value} event field {name} has a bad value {value!r:.40}")
    return cls(**kwargs)
