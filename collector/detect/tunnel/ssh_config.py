# SPDX-License-Identifier: Apache-2.0
"""ssh_config(5) lines as OpenSSH reads them (readconf.c, misc.c): keyword, words, forward specs. Pure, linear."""

from __future__ import annotations

import re
from dataclasses import dataclass

WHITESPACE = " \t\r\n"  # misc.h WHITESPACE
QUOTE = '"'
_DELIMITERS = frozenset(WHITESPACE + QUOTE + "=")


class Refused(Exception):
    """ssh rejects this line or spec and exits (255) before it connects: nothing is opened."""


def _strdelim(s: str) -> tuple[str | None, str | None]:
    """misc.c strdelim(): the next token and the rest; splits on whitespace or one '=', honours "quotes"."""
    at = next((i for i, c in enumerate(s) if c in _DELIMITERS), -1)
    if at < 0:
        return s, None
    if s[at] == QUOTE:
        close = s.find(QUOTE, at + 1)
        if close < 0:
            return None, None  # no matching quote
        return s[:at] + s[at + 1 : close], s[close + 1 :].lstrip(WHITESPACE)
    rest = s[at + 1 :].lstrip(WHITESPACE)
    if s[at] != "=" and rest.startswith("="):
        rest = rest[1:].lstrip(WHITESPACE)  # "Key = value": one '=' amid the whitespace
    return s[:at], rest


def keyword(line: str) -> tuple[str, str] | None:
    """(keyword in lower case, the rest as written) as process_config_line_depth() splits ``-o line``.

    None for a line ssh skips (empty, a comment). Raises Refused for a keyword without a value.
    """
    line = line.rstrip(WHITESPACE + "\f")
    if not line:
        return None
    key, rest = _strdelim(line)
    if key == "" and rest is not None:
        key, rest = _strdelim(rest)  # leading whitespace (or '=') before the keyword
    if not key or key[0] in "\n#":
        return None
    rest = rest.lstrip(WHITESPACE) if rest is not None else ""
    if not rest:
        raise Refused(f"no argument after keyword {key.lower()!r}")
    return key.lower(), rest


def argv_split(s: str) -> list[str]:
    """misc.c argv_split(s, terminate_on_comment=1): words split on blanks, quotes and backslashes honoured."""
    words: list[str] = []
    i, n = 0, len(s)
    while i < n:
        if s[i] in " \t":
            i += 1
            continue
        if s[i] == "#":
            break
        word: list[str] = []
        quote = ""
        while i < n:
            c = s[i]
            if c == "\\" and i + 1 < n and (s[i + 1] in "'\"\\" or (not quote and s[i + 1] == " ")):
                i += 1
                word.append(s[i])
            elif not quote and c in " \t":
                break
            elif not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                word.append(c)
            i += 1
        if quote:
            raise Refused("invalid quotes")
        words.append("".join(word))
    return words


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
