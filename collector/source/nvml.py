# SPDX-License-Identifier: Apache-2.0
"""GPU devices and their use from NVML, behind one small adapter, sampled every second (issue 14, sensor 3).

The agent reads NVML through ``Nvml`` only: ``PyNvml`` is NVIDIA's own binding (nvidia-ml-py, the pynvml
module); tests and the benchmark use a stand-in with the same methods. Absent or failing NVML never stops
the agent: the sampler counts each failure by its NVML error name, reports itself down
(coalmine_nvml_up 0), and tries to initialise again every ``retry_s`` (a driver restart is survived).
Gauges carry the DCGM exporter's names and labels (dcgm-exporter's default counters: DCGM_FI_DEV_GPU_UTIL,
DCGM_FI_DEV_MEM_COPY_UTIL, DCGM_FI_DEV_FB_USED in MiB, DCGM_FI_DEV_POWER_USAGE in W, DCGM_FI_DEV_SM_CLOCK in
MHz; labels gpu, UUID, device, modelName, Hostname), so the dashboards built on them work unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

# NVML errors after which the handles are stale: shut down, and initialise again later (nvml.h)
_FATAL = frozenset({"uninitialized", "driver_not_loaded", "gpu_is_lost", "lib_rm_version_mismatch", "unknown"})


class NvmlError(Exception):
    """An NVML call failed; ``reason`` is the NVML error name in lower case (NVML_ERROR_GPU_IS_LOST: gpu_is_lost)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GpuDevice:
    index: int
    minor: int  # /dev/nvidiaN
    uuid: str
    name: str
    mig: bool | None  # MIG mode on; None when the GPU cannot say


@dataclass(frozen=True, slots=True)
class GpuSample:
    device: GpuDevice
    util_gpu: int | None  # % of the last sample period a kernel ran
    util_mem: int | None  # % of it the memory was read or written
    fb_used_mib: float | None
    power_w: float | None
    sm_clock_mhz: int | None
    processes: tuple[tuple[int, int], ...]  # (pid, used GPU memory in bytes) of compute processes


class Nvml(Protocol):
    """What the sampler asks NVML; each method raises NvmlError."""

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def count(self) -> int: ...
    def device(self, i: int) -> GpuDevice: ...
    def utilization(self, i: int) -> tuple[int, int]: ...
    def memory_used(self, i: int) -> int: ...
    def power_mw(self, i: int) -> int: ...
    def sm_clock_mhz(self, i: int) -> int: ...
    def processes(self, i: int) -> list[tuple[int, int]]: ...


class PyNvml:
    """The real adapter: nvidia-ml-py's pynvml, NVIDIA's binding of libnvidia-ml (nvml.h)."""

    def __init__(self) -> None:
        import pynvml

        self._nv: Any = pynvml

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except self._nv.NVMLError as exc:
            raise NvmlError(_reason(self._nv, exc)) from None

    def _handle(self, i: int) -> Any:
        return self._call(self._nv.nvmlDeviceGetHandleByIndex, i)

    def init(self) -> None:
        self._call(self._nv.nvmlInit)

    def shutdown(self) -> None:
        self._call(self._nv.nvmlShutdown)

    def count(self) -> int:
        return int(self._call(self._nv.nvmlDeviceGetCount))

    def device(self, i: int) -> GpuDevice:
        h = self._handle(i)
        try:
            current, _pending = self._call(self._nv.nvmlDeviceGetMigMode, h)
            mig: bool | None = bool(current)
        except NvmlError:
            mig = None  # not a MIG-capable GPU
        return GpuDevice(
            i,
            int(self._call(self._nv.nvmlDeviceGetMinorNumber, h)),
            _text(self._call(self._nv.nvmlDeviceGetUUID, h)),
            _text(self._call(self._nv.nvmlDeviceGetName, h)),
            mig,
        )

    def utilization(self, i: int) -> tuple[int, int]:
        u = self._call(self._nv.nvmlDeviceGetUtilizationRates, self._handle(i))
        return int(u.gpu), int(u.memory)

    def memory_used(self, i: int) -> int:
        return int(self._call(self._nv.nvmlDeviceGetMemoryInfo, self._handle(i)).used)

    def power_mw(self, i: int) -> int:
        return int(self._call(self._nv.nvmlDeviceGetPowerUsage, self._handle(i)))

    def sm_clock_mhz(self, i: int) -> int:
        return int(self._call(self._nv.nvmlDeviceGetClockInfo, self._handle(i), self._nv.NVML_CLOCK_SM))

    def processes(self, i: int) -> list[tuple[int, int]]:
        found = self._call(self._nv.nvmlDeviceGetComputeRunningProcesses, self._handle(i))
        return [(int(p.pid), int(p.usedGpuMemory or 0)) for p in found]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reason(nv: Any, exc: Exception) -> str:
    """NVML_ERROR_<NAME> of an NVMLError, lower case; "code_<n>" for a code the binding does not name."""
    code = getattr(exc, "value", None)
    for name in dir(nv):
        if name.startswith("NVML_ERROR_") and getattr(nv, name) == code:
            return name.removeprefix("NVML_ERROR_").lower()
    return f"code_{code}"


class GpuSampler:
    """One NVML sample of every GPU at a time; never raises."""

    def __init__(
        self, adapter: Callable[[], Nvml], retry_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._make = adapter
        self._nvml: Nvml | None = None
        self._retry_s = retry_s
        self._clock = clock
        self._next_init = 0.0
        self.up = False
        self.errors: Counter[str] = Counter()  # NVML failures, by reason
        self.latest: list[GpuSample] = []

    def _start(self) -> bool:
        now = self._clock()
        if now < self._next_init:
            return False
        self._next_init = now + self._retry_s
        try:
            nvml = self._make()
            nvml.init()
        except NvmlError as exc:
            self._count(exc.reason, "NVML is not available")
            return False
        except Exception as exc:  # the binding itself missing or broken: one reason, logged once
            self._count("binding", f"NVML binding failed: {exc}")
            return False
        self._nvml, self.up = nvml, True
        return True

    def _count(self, reason: str, message: str) -> None:
        if not self.errors[reason]:
            log.warning("%s (%s); retrying every %.0f s", message, reason, self._retry_s)
        self.errors[reason] += 1

    def _down(self, reason: str) -> None:
        self._count(reason, "NVML failed")
        if self._nvml is not None:
            with contextlib.suppress(NvmlError):
                self._nvml.shutdown()
        self._nvml, self.up, self.latest = None, False, []
        self._next_init = self._clock() + self._retry_s

    def sample(self) -> list[GpuSample]:
        """Every GPU's sample now ([] while NVML is down); a metric a GPU does not support is None."""
        if self._nvml is None and not self._start():
            return []
        nvml = self._nvml
        assert nvml is not None
        try:
            samples = [self._one(nvml, i) for i in range(nvml.count())]
        except NvmlError as exc:
            self._down(exc.reason)
            return []
        self.latest = samples
        return samples

    def _one(self, nvml: Nvml, i: int) -> GpuSample:
        def read(fn: Callable[[int], Any]) -> Any:
            try:
                return fn(i)
            except NvmlError as exc:
                if exc.reason in _FATAL:
                    raise
                self.errors[exc.reason] += 1  # not_supported, no_permission, ...: this metric only
                return None

        util = read(nvml.utilization)
        used = read(nvml.memory_used)
        power = read(nvml.power_mw)
        return GpuSample(
            nvml.device(i),
            util[0] if util else None,
            util[1] if util else None,
            used / (1024 * 1024) if used is not None else None,
            power / 1000 if power is not None else None,
            read(nvml.sm_clock_mhz),
            tuple(read(nvml.processes) or ()),
        )


# (name, help, what of a sample): dcgm-exporter's default-counters.csv names and units
DCGM_GAUGES: tuple[tuple[str, str, Callable[[GpuSample], float | None]], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", lambda s: s.util_gpu),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).", lambda s: s.util_mem),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", lambda s: s.fb_used_mib),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", lambda s: s.power_w),
    ("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", lambda s: s.sm_clock_mhz),
)


def dcgm_series(samples: list[GpuSample], host: str) -> dict[str, tuple[str, list[tuple[dict[str, str], float]]]]:
    """The DCGM-named gauges of ``samples``: name -> (help, [(labels, value)]), a metric a GPU lacks left out."""
    out: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}
    for name, help_, get in DCGM_GAUGES:
        series = []
        for s in samples:
            value = get(s)
            if value is None:
                continue
            labels = {
                "gpu": str(s.device.index),
                "UUID": s.device.uuid,
                "device": f"nvidia{s.device.minor}",
                "modelName": s.device.name,
                "Hostname": host,
            }
            series.append((labels, float(value)))
        out[name] = (help_, series)
    return out
