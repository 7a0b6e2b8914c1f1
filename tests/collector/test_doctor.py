# SPDX-License-Identifier: Apache-2.0
"""doctor's capability logic, from the CapEff mask as /proc shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.doctor import CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, can_load_bpf, effective_caps


@pytest.mark.parametrize(
    ("caps", "ok"),
    [
        (0, False),
        (1 << CAP_BPF, False),  # CAP_BPF alone cannot attach tracepoints
        (1 << CAP_BPF | 1 << CAP_PERFMON, True),
        (1 << CAP_SYS_ADMIN, True),
        (0x000001FFFFFFFFFF, True),  # root's full set
    ],
)
def test_can_load_bpf(caps: int, ok: bool) -> None:
    """CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON, is enough; less is not."""
    assert can_load_bpf(caps) is ok


def test_effective_caps_parsing(tmp_path: Path) -> None:
    """CapEff is read as hex; an unreadable file means no capabilities."""
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t000000c000200000\n")
    assert effective_caps(status) == 0xC000200000
    assert effective_caps(tmp_path / "missing") == 0
