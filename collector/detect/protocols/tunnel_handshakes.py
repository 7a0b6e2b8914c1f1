# SPDX-License-Identifier: Apache-2.0
"""Recognise a tunnelling tool by the first bytes it sends (data/tunnel_tools.toml [[handshake]]).

Input is the head of a TCP stream (probes capture at most 256 bytes), cut
anywhere. An HTTP head is split into lines once; other signatures are regexes
anchored at the first byte with bounded repeats. At most MAX_SCAN bytes are
looked at, so the cost is linear and any input returns a value.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources

MAX_SCAN = 4096
MAX_HEADERS = 64
_TLS_CLIENT_HELLO = re.compile(rb"\x16\x03[\x00-\x04]..\x01", re.DOTALL)  # RFC 8446 5.1: record 22, handshake 1


@dataclass(frozen=True, slots=True)
class Handshake:
    id: str
    tool: str
    severity: str
    kind: str  # "http_header" | "regex" | "whole" | "tls_client"
    what: str
    source: str
    pattern: re.Pattern[bytes] | None  # regex, whole; for http_header the request line
    header: bytes  # http_header: lower-case header name
    value: re.Pattern[bytes] | None  # http_header: the header's value
    processes: frozenset[str]  # tls_client: process names it is raised for


def _load() -> tuple[Handshake, ...]:
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("tunnel_tools.toml").read_text())
    found = []
    for entry in raw["handshake"]:
        pattern = entry.get("request") or entry.get("regex")
        value = entry.get("value")
        found.append(
            Handshake(
                entry["id"],
                entry["tool"],
                entry["severity"],
                entry["kind"],
                entry["what"],
                entry["source"],
                re.compile(pattern.encode(), re.DOTALL) if pattern else None,
                entry.get("header", "").lower().encode(),
                re.compile(value.encode(), re.DOTALL) if value else None,
                frozenset(entry.get("processes", ())),
            )
        )
    return tuple(found)


HANDSHAKES = _load()


def _http_headers(head: bytes) -> tuple[bytes, dict[bytes, bytes]] | None:
    """The request line and the (lower-cased) headers of an HTTP head, as far as it goes."""
    lines = head.split(b"\r\n", MAX_HEADERS + 1)
    if len(lines) < 2:
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1 : MAX_HEADERS + 1]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue  # the blank line ending the head, or a line the capture cut
        headers.setdefault(name.strip().lower(), value.strip())
    return lines[0], headers


def classify(data: bytes, truncated: bool, sender: frozenset[str] = frozenset()) -> Handshake | None:
    """The tool whose handshake ``data`` (the first bytes of a connection, cut if ``truncated``) is.

    ``sender`` holds the names of the sending process (its exe's and argv[0]'s basenames).
    """
    head = data[:MAX_SCAN]
    http = _http_headers(head) if head.startswith(b"GET ") else None
    for hs in HANDSHAKES:
        if hs.kind == "http_header" and hs.pattern is not None and hs.value is not None:
            if http is None:
                continue
            request, headers = http
            value = headers.get(hs.header)
            if value is not None and hs.pattern.fullmatch(request) and hs.value.fullmatch(value):
                return hs
        elif hs.kind == "regex" and hs.pattern is not None:
            if hs.pattern.match(head):
                return hs
        elif hs.kind == "whole" and hs.pattern is not None:
            if not truncated and hs.pattern.fullmatch(head):
                return hs
        elif hs.kind == "tls_client" and sender & hs.processes and _TLS_CLIENT_HELLO.match(head):
            return hs
    return None
