# SPDX-License-Identifier: Apache-2.0
"""What the GPU device-open sensor (in exec.bpf.c) takes for a GPU: path prefixes and device majors, as -D flags."""

from __future__ import annotations

import re
from collections.abc import Sequence

from probes.errors import ProbeError

# The device files of the NVIDIA driver (nvidia0..N, nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset,
# nvidia-caps/*: NVIDIA's "Device Nodes" in the driver README) and of AMD's ROCm (kfd; the DRM render nodes
# renderD128..: ROCm's "GPU isolation" docs).
DEFAULT_PREFIXES: tuple[str, ...] = ("/dev/nvidia", "/dev/kfd", "/dev/dri/renderD")
# NVIDIA's character-device major is fixed (195: Documentation/admin-guide/devices.txt, "NVIDIA graphics");
# nvidia-uvm's and AMD's kfd are dynamic, so they are found by path only unless configured.
DEFAULT_MAJORS: tuple[int, ...] = (195,)
PREFIX_MAX = 16  # bytes of a path the sensor compares (GPU_PREFIX_MAX in exec.bpf.c)
_SAFE = re.compile(r"[A-Za-z0-9/._+-]+")  # what a prefix may hold: it becomes a C string literal


def cflags(prefixes: Sequence[str] = DEFAULT_PREFIXES, majors: Sequence[int] = DEFAULT_MAJORS) -> list[str]:
    """The sensor's GPU_PREFIX_MATCH(h) and GPU_MAJOR_MATCH(m) as -D flags; ProbeError on a bad prefix."""
    if not prefixes:
        raise ProbeError("gpu device paths: at least one prefix is needed (the default list is DEFAULT_PREFIXES)")
    for prefix in prefixes:
        if not 0 < len(prefix.encode()) <= PREFIX_MAX or not _SAFE.fullmatch(prefix):
            raise ProbeError(
                f"gpu device path prefix {prefix!r}: 1 to {PREFIX_MAX} bytes of letters, digits and / . _ + -"
            )
    for major in majors:
        if not 0 < major < 4096:
            raise ProbeError(f"gpu device major {major}: must be 1 to 4095 (a 12-bit device major)")
    match = "||".join(f'PREFIX(h, "{p}")' for p in prefixes)
    majors_match = "||".join(f"(m) == {m}" for m in majors) or "0"
    return [f"-DGPU_PREFIX_MATCH(h)=({match})", f"-DGPU_MAJOR_MATCH(m)=({majors_match})"]
