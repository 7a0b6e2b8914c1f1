# SPDX-License-Identifier: Apache-2.0
"""Recognise an SSH identification string (RFC 4253 section 4.2) at the head of a TCP stream.

``SSH-protoversion-softwareversion [SP comments] CR LF``. A client sends it
first: RFC 4253 lets only a server send other lines before it, and OpenSSH's
sshd refuses a client that does (kex.c kex_exchange_identification(): "Do not
accept lines before the SSH ident from a client"). So the identification must
start at byte 0; ``SSH-2.0-`` anywhere else is not one.

What is accepted is what OpenSSH accepts, since a client only needs its
server to take the line (kex.c, the same function):
- the line ends at LF; CRs before the LF are dropped (so CR LF, LF alone and
  CR CR LF all end it), and a CR followed by anything else, or a NUL, makes
  the line invalid; every other byte is kept, printable or not;
- a line longer than SSH_MAX_BANNER_LEN (8192) is refused;
- ``sscanf("SSH-%d.%d-%[^\\n]")``: each number as glibc's ``%d`` reads it
  (leading blanks, a sign, any digits, an overflow clamped to ``long`` then
  cut to ``int``), at least one byte after the second ``-``; then protocol
  major 2 (any minor) or 1.99 (RFC 4253 section 5.1, the compatibility
  version). SSH-1.x (1.5, 1.3) is not SSH here: protocol 1 is broken
  (CVE-2001-0361 and the CRC-32 compensation attack) and gone from OpenSSH's
  client and server since 7.6 (2017), so no current server would take it.

The softwareversion (the implementation: ``OpenSSH_9.2p1``, ``paramiko_2.12.0``,
``Go``) runs to the first SP; the comments are the rest. RFC 4253 forbids
``-`` in it, but JSch (``JSCH-0.1.55``) and Apache MINA (``APACHE-SSHD-2.9.2``)
send one and servers accept it, so it is kept.

The probes capture at most 256 bytes, so a long line may be cut: a line with
no LF in the bytes is accepted as cut (``complete=False``) once it holds the
whole ``SSH-<major>.<minor>-`` prefix; shorter than that it could be anything
that starts with ``SSH-`` and is not taken.

Bounded and linear: at most MAX_LINE + 1 bytes are looked at, with one
anchored regex whose classes do not overlap; any bytes in, a value out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE = 8192  # OpenSSH's SSH_MAX_BANNER_LEN (kex.h): a longer line is refused by ssh and sshd

# "SSH-" then sscanf's "%d.%d-": %d skips blanks (isspace; CR and LF cannot be inside the line), takes a sign.
_PREFIX = re.compile(rb"SSH-([ \t\v\f]*[+-]?[0-9]+)\.([ \t\v\f]*[+-]?[0-9]+)-")

_LONG_MAX = 2**63 - 1  # strtol() clamps to long (LP64: Linux on x86_64 and arm64)
_LONG_DIGITS = len(str(_LONG_MAX))


@dataclass(frozen=True, slots=True)
class Identification:
    protoversion: str  # as written: "2.0", "1.99" (or what OpenSSH also reads as 2.x, e.g. "2.5")
    softwareversion: str  # the implementation, e.g. "OpenSSH_9.2p1"; may be cut, or "" when cut after "-"
    comments: str | None  # after the first SP, e.g. "Debian-2+deb12u3"; None without a SP
    complete: bool  # the line ended (LF) within the bytes


def _scanf_int(text: bytes) -> int:
    """The int glibc's sscanf("%d") stores for ``text`` (blanks, sign, digits; the regex made sure)."""
    body = text.lstrip(b" \t\v\f")
    negative = body.startswith(b"-")
    digits = body.lstrip(b"+-").lstrip(b"0") or b"0"
    # More digits than LONG_MAX has means overflow: strtol() returns LONG_MAX or LONG_MIN. Checked on the
    # length first, so no huge number is ever built (and Python's int() digit limit is never reached).
    value = _LONG_MAX + 1 if len(digits) > _LONG_DIGITS else int(digits)
    value = -min(value, _LONG_MAX + 1) if negative else min(value, _LONG_MAX)
    return (value + 2**31) % 2**32 - 2**31  # stored through an int *: the low 32 bits, signed


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def parse(data: bytes) -> Identification | None:
    """The SSH identification at the start of ``data``, or None when ``data`` does not start with one."""
    window = data[: MAX_LINE + 1]
    end = window.find(b"\n")
    complete = end >= 0
    raw = window[:end] if complete else window
    line = raw.rstrip(b"\r")  # CRs just before the LF, or at the cut, are dropped
    if b"\r" in line or b"\0" in line or len(line) > MAX_LINE:
        return None
    m = _PREFIX.match(line)
    if m is None:
        return None
    major, minor = _scanf_int(m.group(1)), _scanf_int(m.group(2))
    if not (major == 2 or (major == 1 and minor == 99)):
        return None
    rest = line[m.end() :]
    if complete and not rest:
        return None  # sscanf's %[^\n] needs at least one byte: OpenSSH refuses "SSH-2.0-"
    software, space, comments = rest.partition(b" ")
    return Identification(
        protoversion=_text(line[4 : m.end() - 1]),
        softwareversion=_text(software),
        comments=_text(comments) if space else None,
        complete=complete,
    )
