# SPDX-License-Identifier: Apache-2.0
"""The GPU sensor's prefixes and majors as -D flags, and what is refused."""

from __future__ import annotations

import pytest

from probes import gpu
from probes.errors import ProbeError


def test_default_flags_name_the_nvidia_and_amd_files() -> None:
    """The default prefixes become one PREFIX() test each, the NVIDIA major one compare."""
    match, majors = gpu.cflags()
    assert match == (
        '-DGPU_PREFIX_MATCH(h)=(PREFIX(h, "/dev/nvidia")||PREFIX(h, "/dev/kfd")||PREFIX(h, "/dev/dri/renderD"))'
    )
    assert majors == "-DGPU_MAJOR_MATCH(m)=((m) == 195)"


def test_no_majors_match_nothing() -> None:
    """An empty major list compiles to a test that is always false (paths only)."""
    assert gpu.cflags(["/dev/nvidia"], [])[1] == "-DGPU_MAJOR_MATCH(m)=(0)"


@pytest.mark.parametrize(
    ("prefixes", "majors", "why"),
    [
        ([], [195], "at least one prefix"),
        (['/dev/x"); evil(); ("'], [195], "letters, digits"),  # it becomes a C string literal
        (["/dev/a-very-long-gpu-prefix"], [195], "1 to 16 bytes"),
        ([""], [195], "1 to 16 bytes"),
        (["/dev/nvidia"], [0], "1 to 4095"),
        (["/dev/nvidia"], [4096], "1 to 4095"),
    ],
)
def test_bad_prefixes_and_majors_are_refused(prefixes: list[str], majors: list[int], why: str) -> None:
    """What cannot be compiled safely into the sensor is a one-line error that says what is allowed."""
    with pytest.raises(ProbeError, match=why):
        gpu.cflags(prefixes, majors)
