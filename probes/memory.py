# SPDX-License-Identifier: Apache-2.0
"""Give the compiler's memory back between compiles, so the agent's peak is one compile's, not their sum."""

from __future__ import annotations

import ctypes as ct
import ctypes.util

_MADV_PAGEOUT = 21  # Linux >= 5.4 (include/uapi/asm-generic/mman-common.h)


def release_compiler_memory() -> None:
    """Give memory back before and after each compile: the agent's peak is one compile's, not their sum.

    bcc links all of clang and LLVM: loading it touches much of their code, and a compile leaves
    more of it resident (clean file pages) and its freed heap held by glibc (bench/README.md has
    the sizes). malloc_trim returns the heap; MADV_PAGEOUT (madvise(2)) drops the clean pages of
    every mapped file, which are read back only as they run: the compiler's during the next
    compile, Python's and its libraries' once the agent runs again. Best effort: both are skipped
    where libc or the kernel lacks them.
    """
    libc = ct.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    libc.madvise.argtypes = [ct.c_void_p, ct.c_size_t, ct.c_int]
    try:
        with open("/proc/self/maps") as f:
            maps = f.read().splitlines()
    except OSError:
        return
    for line in maps:
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith("/"):  # a file; not [heap], [stack] or a BPF map
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            libc.madvise(lo, hi - lo, _MADV_PAGEOUT)
