# SPDX-License-Identifier: Apache-2.0
"""gpu.unapproved against approved-workload policies: exe, cgroup, uid and comm globs; off without entries."""

from __future__ import annotations

from typing import Any

import pytest

from collector.detect import Severity, State
from collector.detect.gpu.unapproved import UnapprovedDetector, approvals
from collector.enrich.process import ProcessTable
from probes.events import GpuOpenEvent
from tests.factories import common, exec_event

POD = "/kubepods.slice/kubepods-pod0a1b.slice/cri-containerd-4f1c.scope"
POLICY = [
    {"exe": "/opt/conda/bin/python3*", "cgroup": "/kubepods.slice/*"},
    {"exe": "/usr/bin/nvidia-smi"},
    {"uid": 0, "comm": "nv-hostengine"},
]


def _open(pid: int = 4242, opened: bool = True, **kw: Any) -> GpuOpenEvent:
    return GpuOpenEvent(
        **common(pid=pid, cgroup_id=9, **kw), how="path", path="/dev/nvidia0", ret_raw=5 if opened else -13,
        major=195 if opened else 0, minor=0,
    )  # fmt: skip


def _detect(exe: str, event: GpuOpenEvent, policy: list[dict[str, Any]] = POLICY, cgroup: str = POD) -> list[Any]:
    table = ProcessTable()
    table.apply(exec_event([exe], exe=exe, pid=event.tgid, cgroup_id=9))
    return UnapprovedDetector(policy).detect(event, State(table, {9: cgroup}))


@pytest.mark.parametrize(
    ("exe", "event", "cgroup"),
    [
        ("/opt/conda/bin/python3.11", _open(), POD),  # the training image, in a pod
        ("/usr/bin/nvidia-smi", _open(), "/"),
        ("/usr/bin/nv-hostengine", _open(uid=0, comm="nv-hostengine"), "/"),
    ],
)
def test_approved_workloads_raise_nothing(exe: str, event: GpuOpenEvent, cgroup: str) -> None:
    """A process matching every key of one entry is approved."""
    assert _detect(exe, event, cgroup=cgroup) == []


@pytest.mark.parametrize(
    ("exe", "event", "cgroup"),
    [
        ("/tmp/.x/t-rex", _open(), POD),  # the right pod, another binary
        ("/opt/conda/bin/python3.11", _open(), "/system.slice/cron.service"),  # the right binary outside pods
        ("/usr/local/bin/nv-hostengine", _open(uid=1000, comm="nv-hostengine"), "/"),  # the right name, not root
    ],
)
def test_anything_else_that_opens_a_gpu_is_medium(exe: str, event: GpuOpenEvent, cgroup: str) -> None:
    """A GPU opened by a process no entry approves is gpu.unapproved, medium, with what it was judged by."""
    (finding,) = _detect(exe, event, cgroup=cgroup)
    assert finding.level is Severity.MEDIUM and finding.evidence["exe"] == exe
    assert finding.evidence["cgroup"] == cgroup and finding.evidence["device"] == "/dev/nvidia0"


def test_off_without_a_policy_and_for_failed_opens_and_once_per_process() -> None:
    """No entries: the rule is off. A failed open is no GPU use. A process alerts once, whatever it opens next."""
    assert _detect("/tmp/t-rex", _open(), policy=[]) == []
    assert _detect("/tmp/t-rex", _open(opened=False)) == []
    table = ProcessTable()
    detector = UnapprovedDetector(POLICY)
    assert len(detector.detect(_open(), State(table))) == 1
    assert detector.detect(_open(), State(table)) == []


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([{"exe": "/x", "pod": "a"}], "keys must be some of"),
        ([{}], "keys must be some of"),
        ([{"exe": ""}], "non-empty glob"),
        ([{"uid": "0"}], "uid must be an integer"),
        ([{"uid": True}], "uid must be an integer"),
    ],
)
def test_bad_policies_are_refused(entries: list[dict[str, Any]], why: str) -> None:
    """A policy entry that could not match as meant is refused with its number and what is wrong."""
    with pytest.raises(ValueError, match=why):
        approvals(entries)
