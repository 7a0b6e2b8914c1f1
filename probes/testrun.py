# SPDX-License-Identifier: Apache-2.0
"""Run a loaded, unattached BPF program on demand (BPF_PROG_TEST_RUN), through libbpf."""

from __future__ import annotations

import ctypes as ct
import ctypes.util
import os

from probes.errors import ProbeError


class _TestRunOpts(ct.Structure):
    """libbpf's struct bpf_test_run_opts, up to the fields used here (sz says how far)."""

    _fields_ = [
        ("sz", ct.c_size_t),
        ("data_in", ct.c_void_p),
        ("data_out", ct.c_void_p),
        ("data_size_in", ct.c_uint32),
        ("data_size_out", ct.c_uint32),
        ("ctx_in", ct.c_void_p),
        ("ctx_out", ct.c_void_p),
        ("ctx_size_in", ct.c_uint32),
        ("ctx_size_out", ct.c_uint32),
        ("retval", ct.c_uint32),
        ("repeat", ct.c_int),
        ("duration", ct.c_uint32),
    ]


class ProgramRunner:
    """Runs a loaded, unattached BPF program once on a dummy packet (BPF_PROG_TEST_RUN); returns its result."""

    def __init__(self, fd: int) -> None:
        name = ctypes.util.find_library("bpf")
        if name is None:
            raise ProbeError("libbpf not found (it comes with bcc): cannot run the socket sweep")
        self._run = ct.CDLL(name, use_errno=True).bpf_prog_test_run_opts
        self._run.argtypes = [ct.c_int, ct.POINTER(_TestRunOpts)]
        self._fd = fd
        self._packet = ct.create_string_buffer(64)  # the program ignores it; the kernel wants >= an Ethernet header

    def __call__(self) -> int:
        opts = _TestRunOpts(sz=ct.sizeof(_TestRunOpts), data_in=ct.addressof(self._packet), data_size_in=64)
        if self._run(self._fd, ct.byref(opts)) != 0:
            err = ct.get_errno()
            raise OSError(err, f"BPF_PROG_TEST_RUN: {os.strerror(err)}")
        return int(opts.retval)
