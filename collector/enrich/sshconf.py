# SPDX-License-Identifier: Apache-2.0
"""The ssh_config lines an OpenSSH client will apply, read at its exec from its own root, so replay needs no files.

Which files (ssh.c process_config_files()): ``-F FILE`` alone if given ("none": none), else ~/.ssh/config (the
home of the process's uid in its own /etc/passwd, as getpwuid() gives ssh) and /etc/ssh/ssh_config. Within
them (readconf.c read_config_file_depth(), process_config_line_depth(), match_cfg_line()): ``Include`` globs,
relative to ~/.ssh in user files and /etc/ssh in the system file, read with the including line's state
(its "~" is glibc glob(GLOB_TILDE)'s: $HOME from the process's environment, else the passwd home);
``Host`` patterns (``*``, ``?``, ``!negation``) against the destination; ``Match all``, ``host``,
``originalhost`` (``Match host`` sees the first Hostname set so far, %h expanded). Other Match criteria
(user, exec, localnetwork, ...) are not evaluated: their blocks count as matching, so a forward there is
reported even when ssh would skip it. Every line of the kinds the tunnel rules read, in an active block,
is kept in order with its file and line; the rules apply first-value-wins after argv, as ssh does.
Bounded by Limits; a file not read is counted in ``skipped`` by reason and the rest goes on.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from collector.enrich import rootfs
from collector.enrich.ssh_client import Refused, Target, argv_split, keyword, target
from probes.events import ExecEvent

# What the tunnel rules read (collector/detect/tunnel/ssh_argv.py _CONFIG); everything else is not kept.
KEPT = frozenset(
    {
        "remoteforward",
        "localforward",
        "dynamicforward",
        "tunnel",
        "tunneldevice",
        "clearallforwardings",
        "permitremoteopen",
        "proxycommand",
        "proxyjump",
    }
)
USER_DIR = ".ssh"  # pathnames.h _PATH_SSH_USER_DIR
SYSTEM_DIR = "/etc/ssh"  # SSHDIR
SYSTEM_CONFIG = "/etc/ssh/ssh_config"  # _PATH_HOST_CONFIG_FILE


@dataclass(frozen=True, slots=True)
class Limits:
    file_bytes: int = 256 * 1024  # a larger file is skipped whole: ssh configs are a few KiB
    depth: int = 16  # readconf.c READCONF_MAX_DEPTH: ssh itself refuses deeper Include nesting
    files: int = 64  # files opened for one exec, Include globs included
    lines: int = 256  # lines kept for one exec (each a recorded string)
    seconds: float = 0.25  # wall time for one exec; the annotator runs on the agent's event loop


class SshConfigReader:
    """Adds ``ssh_config``/``ssh_config_from`` to execs of OpenSSH clients; other execs come back as they are."""

    def __init__(
        self, proc: str = "/proc", limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._proc = proc
        self._limits = limits or Limits()
        self._clock = clock
        self.skipped: Counter[str] = Counter()  # files (or lines) not read, by reason

    def __call__(self, event: ExecEvent) -> ExecEvent:
        found = target(event)
        if found is None:
            return event
        if found.client == "autossh":
            event = replace(event, environ=autossh_environ(self._proc, event.tgid))
        if found.config == "none":
            return event
        try:
            root = rootfs.open_dir(self._proc, event.tgid, "root")
        except rootfs.Skipped as e:
            self.skipped[e.reason] += 1
            return event
        walk = _Walk(
            root,
            found,
            limits=self._limits,
            deadline=self._clock() + self._limits.seconds,
            clock=self._clock,
            skipped=self.skipped,
        )
        try:
            walk.homes = _passwd(root, self._limits.file_bytes, self.skipped)
            walk.home = walk.homes.get(str(event.uid))
            walk.environ_home = functools.cache(lambda: _environ_home(self._proc, event.tgid))  # once, if needed
            if found.config is not None:
                walk.main(found.config, self._cwd(event.tgid))
            else:
                walk.main(f"~/{USER_DIR}/config", None)
                walk.system = True
                walk.main(SYSTEM_CONFIG, None)
        except (OSError, ValueError):  # a file system that fails under us, a NUL in a passwd home: keep what was read
            self.skipped["error"] += 1
        finally:
            os.close(root)
        if not walk.lines:
            return event
        return replace(event, ssh_config=tuple(walk.lines), ssh_config_from=tuple(walk.origins))

    def _cwd(self, pid: int) -> int | None:
        try:
            return rootfs.open_dir(self._proc, pid, "cwd")
        except rootfs.Skipped:
            return None


def _passwd(root: int, max_bytes: int, skipped: Counter[str]) -> dict[str, str]:
    """uid -> home and ~name -> home from the process's own /etc/passwd."""
    try:
        text = rootfs.read(root, "/etc/passwd", max_bytes * 4).decode("utf-8", "replace")
    except rootfs.Skipped as e:
        skipped[f"passwd {e.reason}"] += 1
        return {}
    homes: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 6:
            homes.setdefault(parts[2], parts[5])
            homes.setdefault(f"~{parts[0]}", parts[5])
    return homes


ENVIRON_MAX = 1 << 20  # bytes of /proc/PID/environ read for HOME (ARG_MAX-sized environments exist)


def _environ_home(proc: str, pid: int) -> str | None:
    """$HOME in the environment the process was exec'd with, if set and not empty."""
    try:
        with open(f"{proc}/{pid}/environ", "rb") as f:
            data = f.read(ENVIRON_MAX)
    except OSError:
        return None
    for item in data.split(b"\0"):
        if item.startswith(b"HOME="):
            return item[5:].decode("utf-8", "replace") or None
    return None


AUTOSSH_PREFIX = "AUTOSSH_"  # autossh(1) ENVIRONMENT: AUTOSSH_PORT, AUTOSSH_PATH, AUTOSSH_GATETIME, ...
AUTOSSH_MAX = (32, 1024)  # variables kept, characters of each: bounded whatever the environment holds


def autossh_environ(proc: str, pid: int) -> tuple[str, ...]:
    """The AUTOSSH_* variables autossh was exec'd with, as NAME=value, and nothing else of its environment."""
    try:
        with open(f"{proc}/{pid}/environ", "rb") as f:
            data = f.read(ENVIRON_MAX)
    except OSError:
        return ()
    found = [item.decode("utf-8", "backslashreplace") for item in data.split(b"\0") if item.startswith(b"AUTOSSH_")]
    return tuple(item[: AUTOSSH_MAX[1]] for item in found[: AUTOSSH_MAX[0]])


def _match_pattern(name: str, pattern: str) -> bool:
    """match.c match_pattern(): '*' any run, '?' any one character, case-insensitive here (ssh lowercases hosts)."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower().replace("[", "[[]"))


def _match_list(name: str, patterns: str) -> bool:
    """match.c match_pattern_list(): comma-separated; a negated pattern that matches rules the name out."""
    got = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if _match_pattern(name, pattern[1:] if negated else pattern):
            if negated:
                return False
            got = True
    return got


class _Walk:
    """One exec's reading: files in ssh's order, lines kept in order."""

    def __init__(
        self,
        root: int,
        found: Target,
        *,
        limits: Limits,
        deadline: float,
        clock: Callable[[], float],
        skipped: Counter[str],
    ) -> None:
        self.root, self.target, self.limits = root, found, limits
        self.deadline, self.clock, self.skipped = deadline, clock, skipped
        self.hostname = found.hostname
        self.homes: dict[str, str] = {}
        self.home: str | None = None  # the uid's passwd home: where ~/.ssh/config is (ssh.c, pw->pw_dir)
        self.environ_home: Callable[[], str | None] = lambda: None
        self.system = False  # reading /etc/ssh/ssh_config: no '~', relative Includes under /etc/ssh
        self.files = 0
        self.open: list[str] = []  # the Include chain being read
        self.lines: list[str] = []
        self.origins: list[str] = []

    def main(self, path: str, cwd: int | None) -> None:
        try:
            self.file(self._expand(path, self.home), 0, True, cwd)
        except rootfs.Skipped as e:
            self._skip(e.reason)
        finally:
            if cwd is not None:
                os.close(cwd)

    def _skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def _expand(self, path: str, home: str | None) -> str:
        """~/ is ``home``, ~name/ that user's passwd home; raises Skipped when there is none."""
        if not path.startswith("~"):
            return path
        name, _, rest = path.partition("/")
        home = home if name == "~" else self.homes.get(name)
        if home is None:
            raise rootfs.Skipped("no home")
        return f"{home.rstrip('/')}/{rest}"

    def file(self, path: str, depth: int, active: bool, cwd: int | None = None) -> None:
        """Reads ``path`` with the including line's state; counts and skips it if it cannot be read."""
        try:
            if self.clock() > self.deadline:
                raise rootfs.Skipped("time")
            if self.files >= self.limits.files:
                raise rootfs.Skipped("too many files")
            if path in self.open:
                raise rootfs.Skipped("include loop")  # ssh itself stops at READCONF_MAX_DEPTH and exits
            self.files += 1
            data = rootfs.read(self.root, path, self.limits.file_bytes, cwd)
            if b"\0" in data:
                raise rootfs.Skipped("binary")
        except rootfs.Skipped as e:
            self._skip(e.reason)
            return
        except (OSError, ValueError):  # a file system failing under us; a NUL in a path (from a passwd home)
            self._skip("unreadable")
            return
        self.open.append(path)
        try:
            self._lines(path, data.decode("utf-8", "replace"), depth, active)
        finally:
            self.open.pop()

    def _lines(self, path: str, text: str, depth: int, active: bool) -> None:
        for number, line in enumerate(text.split("\n"), 1):
            try:
                parsed = keyword(line)
                if parsed is None:
                    continue
                key, rest = parsed
                words = argv_split(rest)  # every line is split first: unbalanced quotes are an error
                if key == "host":
                    active = self._host(words)
                elif key == "match":
                    active = self._match(words)
                elif not active:
                    continue
                elif key == "include":
                    self._include(words, depth)
                elif key == "hostname" and self.hostname is None:
                    self.hostname = words[0]
                elif key in KEPT:
                    self._keep(line, f"{path}:{number}")
            except (Refused, IndexError):
                self._skip("bad line")  # ssh exits on it; the rest is still read, so nothing hides behind it
            if number % 1024 == 0 and self.clock() > self.deadline:
                self._skip("time")
                return

    def _keep(self, line: str, origin: str) -> None:
        if len(self.lines) >= self.limits.lines:
            self._skip("too many lines")
            return
        self.lines.append(line.strip())
        self.origins.append(origin)

    def _host(self, patterns: list[str]) -> bool:
        """readconf.c oHost: active if a pattern matches the destination and no negated one does."""
        active = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            if _match_pattern(self.target.host, pattern[1:] if negated else pattern):
                if negated:
                    return False
                active = True
        return active

    def _match(self, words: list[str]) -> bool:
        """readconf.c match_cfg_line(): every criterion must hold; unevaluated ones are taken to hold."""
        host = self.target.host
        if self.hostname is not None:
            host = self.hostname.replace("%h", self.target.host).replace("%%", "%").lower()
        result = True
        i = 0
        while i < len(words):
            attr = words[i].lower()
            i += 1
            negated = attr.startswith("!")
            attr = attr.removeprefix("!")
            if attr in ("all", "canonical", "final"):
                holds = True  # canonical, final: ssh's final pass applies those blocks
            elif i >= len(words):
                raise Refused(f"Match {attr} without an argument")
            else:
                arg = words[i]
                i += 1
                if attr == "host":
                    holds = _match_list(host, arg)
                elif attr == "originalhost":
                    holds = _match_list(self.target.host, arg)
                else:
                    continue  # user, localuser, exec, localnetwork, tagged, ...: not evaluated
            if holds == negated:
                result = False
        return result

    def _include(self, args: list[str], depth: int) -> None:
        if depth + 1 > self.limits.depth:
            self._skip("include depth")
            return
        for arg in args:
            if arg.startswith("~") and self.system:
                self._skip("bad include")  # readconf.c: "~ paths are only allowed in user configuration"
                continue
            anchored = arg
            if not arg.startswith(("/", "~")):
                anchored = f"{SYSTEM_DIR}/{arg}" if self.system else f"~/{USER_DIR}/{arg}"
            try:
                # readconf.c hands "~/..." to glob(GLOB_TILDE), and glibc's glob takes $HOME first, passwd after.
                pattern = self._expand(anchored, self.environ_home() or self.home)
            except rootfs.Skipped as e:
                self._skip(e.reason)
                continue
            for path in rootfs.glob(self.root, pattern, self.limits.files):
                self.file(path, depth + 1, True)
