# SPDX-License-Identifier: Apache-2.0
"""cgroup v2 ids to paths, and what a path says: container id, pod uid, Slurm job.

bpf_get_current_cgroup_id() is the inode number of the cgroup's directory in
the cgroup v2 mount, so a walk of that mount maps ids back to paths. The path
parsers are pure and follow the layouts in shared/research/ecosystem.md §4.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


def find_cgroup2_mount(mountinfo: Path = MOUNTINFO) -> Path | None:
    """The cgroup v2 mount point: /sys/fs/cgroup on unified hosts, .../unified on hybrid ones."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if sep and right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split()[4])
    return None


class CgroupResolver:
    """cgroup id <-> path under one cgroup v2 mount, cached; a miss rescans at most once a second."""

    def __init__(
        self,
        mount: Path | None,
        max_entries: int = 65536,
        rescan_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mount = mount
        self._paths: dict[int, str] = {}
        self._max = max_entries
        self._interval = rescan_interval_s
        self._clock = clock
        self._last_scan = float("-inf")

    def path(self, cgroup_id: int) -> str | None:
        if cgroup_id in self._paths:
            return self._paths[cgroup_id]
        now = self._clock()
        if self.mount is None or now - self._last_scan < self._interval:
            return None
        self._last_scan = now
        self._scan()
        return self._paths.get(cgroup_id)

    def id_of(self, path: str) -> int:
        """The id of the cgroup at ``path`` (as /proc/<pid>/cgroup writes it), 0 when unknown."""
        if self.mount is None:
            return 0
        try:
            ino = os.stat(self.mount / path.lstrip("/")).st_ino
        except OSError:
            return 0
        self._remember(ino, path)
        return ino

    def _remember(self, cgroup_id: int, path: str) -> None:
        if len(self._paths) >= self._max:
            self._paths.pop(next(iter(self._paths)))
        self._paths[cgroup_id] = path

    def _scan(self) -> None:
        assert self.mount is not None
        root = str(self.mount)
        for dirpath, _dirs, _files in os.walk(root):
            try:
                ino = os.stat(dirpath).st_ino
            except OSError:
                continue
            rel = dirpath[len(root) :] or "/"
            self._remember(ino, rel)


# Container ids: 64 hex characters at the end of the path, in every runtime's spelling
# (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope,
# /kubepods/.../<id>, /docker/<id>, ...:cri-containerd:<id>).
_CONTAINER = re.compile(r"(?:^|[/:-])([0-9a-f]{64})(?:\.scope)?(?:/container)?/?$")
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_SLURM = re.compile(r"/job_(\d+)(?:/step_([^/]+))?")


def container_id(path: str) -> str | None:
    """The container id in a cgroup path, or None for host processes."""
    m = _CONTAINER.search(path)
    return m.group(1) if m else None


def pod_uid(path: str) -> str | None:
    """The Kubernetes pod UID in a kubelet cgroup path (systemd spelling uses underscores)."""
    m = _POD.search(path)
    return m.group(1).replace("_", "-") if m else None


def slurm_job(path: str) -> str | None:
    """The Slurm job id in a slurmstepd cgroup path (v1 or v2 layout)."""
    m = _SLURM.search(path)
    return m.group(1) if m else None
