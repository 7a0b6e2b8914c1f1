# SPDX-License-Identifier: Apache-2.0
"""Which programs are shells and interpreters: what a reverse shell runs (issue 13 item 4).

A name is the basename of the exe, of the path exec'd, or of argv[0], with
the version suffixes distributions install (python3.11, perl5.36.0, php8.2,
lua5.4, ruby3.1, tclsh8.6); busybox and toybox run an applet named by
argv[0] or argv[1]. The list is the issue's (sh, bash, dash, zsh, ksh,
busybox, python, perl, ruby, php, node, lua, awk) and their usual kin:
each is a program that runs commands or code read from its stdin or argv.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

SHELLS = frozenset(
    {
        "sh",
        "bash",
        "rbash",
        "dash",
        "ash",
        "zsh",
        "ksh",
        "ksh93",
        "mksh",
        "pdksh",
        "oksh",
        "lksh",
        "yash",
        "fish",
        "tcsh",
        "csh",
        "posh",
        "elvish",
        "nu",
        "xonsh",
        "pwsh",
        "powershell",
    }
)
# Interpreters, matched with an optional version suffix (python3.11, perl5.36.0, lua5.4, php8.2-cli).
_INTERPRETER = re.compile(
    r"(?:python|pypy|perl|ruby|irb|php|php-cli|node|nodejs|deno|bun|lua|luajit|tclsh|wish|expect|guile|"
    r"gawk|mawk|nawk|awk|jjs|jshell|rscript|julia|osascript)"
    r"(?:[0-9][0-9.]*(?:-cli)?|-[0-9][0-9.]*)?",
)
MULTICALL = frozenset({"busybox", "toybox"})  # argv[0] or argv[1] names the applet


def _kind(name: str) -> str | None:
    if name in SHELLS:
        return name
    if _INTERPRETER.fullmatch(name):
        return name
    return None


def shell_name(exe: str | None, filename: str | None, args: Sequence[str]) -> str | None:
    """The shell or interpreter this program is ("bash", "python3.11", "busybox sh"), or None."""
    for path in (exe, filename, args[0] if args else None):
        if not path:
            continue
        base = posixpath.basename(path)
        if base in MULTICALL:
            applet = posixpath.basename(args[0]) if args else ""
            if applet in MULTICALL and len(args) > 1:
                applet = posixpath.basename(args[1])
            found = _kind(applet)
            return f"{base} {found}" if found else None
        found = _kind(base)
        if found:
            return found
        if base.startswith("-") and (found := _kind(base[1:])):  # a login shell's argv[0]: "-bash"
            return found
    return None
