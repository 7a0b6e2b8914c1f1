# SPDX-License-Identifier: Apache-2.0
"""Recognise a mining-pool login in the first bytes a client sends.

Input is the head of a TCP stream (probes capture at most 256 bytes), so the
message may be cut anywhere. A complete first line is parsed as JSON; a cut
one is scanned for the ``"method"`` value and the keys after ``"params"``.
Bounded: at most MAX_SCAN bytes are looked at, with regexes that do not
backtrack, so the cost is linear and any input returns a value.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

MAX_SCAN = 4096

_METHOD = re.compile(rb'"method"\s*:\s*("(?:[^"\\]|\\.){1,128}")')
_KEY = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]{0,31})"\s*:')
_AGENT = re.compile(rb'"agent"\s*:\s*"((?:[^"\\]|\\.){0,128})')


@dataclass(frozen=True, slots=True)
class Signature:
    dialect: str
    methods: frozenset[str]
    params_any: frozenset[str]
    params_all: frozenset[str]
    params_all_if_truncated: frozenset[str]
    source: str


@dataclass(frozen=True, slots=True)
class StratumMatch:
    dialect: str
    method: str
    agent: str | None
    complete: bool  # the first line was whole and parsed as JSON


def _load() -> tuple[dict[str, Signature], dict[str, str]]:
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("stratum.toml").read_text())
    by_method: dict[str, Signature] = {}
    for entry in raw["signature"]:
        sig = Signature(
            entry["dialect"],
            frozenset(entry["methods"]),
            frozenset(entry.get("params_any", ())),
            frozenset(entry.get("params_all", ())),
            frozenset(entry.get("params_all_if_truncated", ())),
            entry["source"],
        )
        for method in sig.methods:
            by_method[method] = sig
    return by_method, dict(raw["markers"])


SIGNATURES, MARKERS = _load()


def _first_message(data: bytes) -> bytes | None:
    head = data[:MAX_SCAN].lstrip(b" \t\r\n")
    if not head.startswith((b"{", b"[")):
        return None  # HTTP, TLS, SSH, binary: not a JSON-RPC line
    return head.split(b"\n", 1)[0]


def _from_json(line: bytes) -> tuple[str, set[str], str | None] | None:
    try:
        msg: Any = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if isinstance(msg, list) and msg:  # a JSON-RPC batch: look at its first call
        msg = msg[0]
    if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
        return None
    params = msg.get("params")
    keys = set(params) if isinstance(params, dict) else set()
    agent = params.get("agent") if isinstance(params, dict) else None
    return msg["method"], keys, agent if isinstance(agent, str) else None


def _scan(line: bytes) -> tuple[str, set[str], str | None] | None:
    m = _METHOD.search(line)
    if not m:
        return None
    try:
        method = json.loads(m.group(1))
    except ValueError:
        return None
    params_at = line.find(b'"params"')
    keys = {k.decode() for k in _KEY.findall(line, params_at + 8)} if params_at >= 0 else set()
    a = _AGENT.search(line, max(params_at, 0))
    agent = a.group(1).decode("utf-8", "backslashreplace") if a else None
    return method, keys, agent


def classify(data: bytes) -> StratumMatch | None:
    """The mining dialect of a client's first bytes, or None when they are not a pool login."""
    line = _first_message(data)
    if line is None:
        return None
    parsed = _from_json(line)
    complete = parsed is not None
    if parsed is None:
        parsed = _scan(line)
    if parsed is None:
        return None
    method, keys, agent = parsed
    sig = SIGNATURES.get(method)
    if sig is None:
        return None
    if sig.params_all and not sig.params_all <= keys:
        return None
    if sig.params_any and not sig.params_any & keys:
        truncated_ok = not complete and sig.params_all_if_truncated and sig.params_all_if_truncated <= keys
        if not truncated_ok:
            return None
    dialect = next((d for marker, d in MARKERS.items() if marker.encode() in line), sig.dialect)
    return StratumMatch(dialect, method, agent, complete)
