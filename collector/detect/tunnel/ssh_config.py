# SPDX-License-Identifier: Apache-2.0
"""ssh_config(5) values as OpenSSH reads them (readconf.c, misc.c): forward specs, tun ids, flags. Pure, linear."""

from __future__ import annotations

import re
from dataclasses import dataclass

from collector.enrich.ssh_client import WHITESPACE, Refused, argv_split, keyword

# The lexer is shared with the config-file reader, which lies below detect/ in the layers.
__all__ = ["FLAG", "TUNNEL_MODES", "WHITESPACE", "Field", "Refused", "argv_split", "fields", "forward_ok", "keyword"]


@dataclass(frozen=True, slots=True)
class Field:
    arg: str
    ispath: bool


def fields(spec: str) -> list[Field] | None:
    """readconf.c parse_fwd_field() over a whole spec: its colon-separated fields, None if malformed."""
    out: list[Field] = []
    i, n = 0, len(spec)
    while i < len(spec) and spec[i].isspace():
        i += 1
    while i < n and len(out) < 4:
        if spec[i] == "[":
            close = spec.find("]", i + 1)
            if close < 0 or (close + 1 < n and spec[close + 1] != ":"):
                return None
            out.append(Field(spec[i + 1 : close], "/" in spec[i + 1 : close]))
            i = close + 2
            continue
        word: list[str] = []
        while i < n and spec[i] != ":":
            if spec[i] == "\\":
                i += 1
                if i >= n:
                    return None
            word.append(spec[i])
            i += 1
        arg = "".join(word)
        out.append(Field(arg, "/" in arg))
        i += 1  # past the colon
    if i < n:
        return None  # more than four fields: trailing garbage
    return out


def forward_ok(spec: str, *, dynamic: bool, remote: bool) -> bool:
    """Whether parse_forward(spec, dynamic, remote) accepts the shape of ``spec`` (ports are not checked)."""
    found = fields(spec)
    if not found:
        return False
    n = len(found)
    if dynamic:
        return n in (1, 2)
    return n in (3, 4) or (n == 2 and found[1].ispath)


_TUN_ID = re.compile(r"(?i:any)|\s*\+?\d+")


def tun_device(value: str) -> bool:
    """misc.c a2tun(): "N", "any", "N:M" (either side "any")."""
    parts = value.split(":", 1)
    return all(_TUN_ID.fullmatch(p) for p in parts)


TUNNEL_MODES = {"ethernet": True, "point-to-point": True, "true": True, "yes": True, "false": False, "no": False}
FLAG = {"true": True, "yes": True, "false": False, "no": False}
