# SPDX-License-Identifier: Apache-2.0
"""The NVML sampler behind its adapter: DCGM-named gauges, metrics a GPU lacks, NVML down and back, no crash."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from collector.metrics import Metrics
from collector.source.nvml import GpuDevice, GpuSampler, NvmlError, PyNvml, dcgm_series


class FakeNvml:
    """A stand-in for NVML with ``gpus`` H100s; ``fail`` maps a method name to the NVML error it raises."""

    def __init__(self, gpus: int = 8, fail: dict[str, str] | None = None) -> None:
        self.gpus = gpus
        self.fail = fail or {}
        self.inits = 0

    def _maybe(self, name: str) -> None:
        if name in self.fail:
            raise NvmlError(self.fail[name])

    def init(self) -> None:
        self._maybe("init")
        self.inits += 1

    def shutdown(self) -> None: ...

    def count(self) -> int:
        self._maybe("count")
        return self.gpus

    def device(self, i: int) -> GpuDevice:
        return GpuDevice(i, i, f"GPU-{i:08x}-0000-0000-0000-000000000000", "NVIDIA H100 80GB HBM3", False)

    def utilization(self, i: int) -> tuple[int, int]:
        self._maybe("utilization")
        return 90 + i % 10, 40

    def memory_used(self, i: int) -> int:
        return (1024 + i) * 1024 * 1024

    def power_mw(self, i: int) -> int:
        self._maybe("power_mw")
        return 350_000

    def sm_clock_mhz(self, i: int) -> int:
        return 1980

    def processes(self, i: int) -> list[tuple[int, int]]:
        return [(4242 + i, 512 * 1024 * 1024)]


def _sampler(fake: FakeNvml, clock: list[float] | None = None) -> GpuSampler:
    now = clock if clock is not None else [0.0]
    make: Callable[[], FakeNvml] = lambda: fake  # noqa: E731
    return GpuSampler(make, retry_s=30, clock=lambda: now[0])


def test_eight_gpus_become_dcgm_gauges() -> None:
    """Each GPU's utilisation, memory, power and clock are gauges under dcgm-exporter's names and labels."""
    sampler = _sampler(FakeNvml())
    samples = sampler.sample()
    assert sampler.up and len(samples) == 8 and samples[3].processes == ((4245, 512 * 1024 * 1024),)
    series = dcgm_series(samples, "gpu-node-7")
    assert set(series) == {
        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_SM_CLOCK",
    }  # fmt: skip
    labels, value = series["DCGM_FI_DEV_FB_USED"][1][2]
    assert value == 1026.0 and labels == {
        "gpu": "2", "UUID": "GPU-00000002-0000-0000-0000-000000000000", "device": "nvidia2",
        "modelName": "NVIDIA H100 80GB HBM3", "Hostname": "gpu-node-7",
    }  # fmt: skip
    metrics = Metrics()
    metrics.named_gauges = lambda: series
    text = metrics.render()
    assert '# TYPE DCGM_FI_DEV_GPU_UTIL gauge' in text
    assert 'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-00000000-0000-0000-0000-000000000000"' in text


def test_a_metric_a_gpu_lacks_is_left_out_and_counted() -> None:
    """NOT_SUPPORTED for one reading leaves that gauge out for the GPU and counts the reason; the rest stay."""
    sampler = _sampler(FakeNvml(fail={"power_mw": "not_supported"}))
    samples = sampler.sample()
    assert samples[0].power_w is None and samples[0].util_gpu == 90
    assert dcgm_series(samples, "n")["DCGM_FI_DEV_POWER_USAGE"][1] == []
    assert sampler.errors["not_supported"] == 8 and sampler.up


def test_nvml_absent_is_retried_not_fatal() -> None:
    """No NVML: no samples, up is false, the reason is counted, and init is tried again only after retry_s."""
    clock = [0.0]
    fake = FakeNvml(fail={"init": "library_not_found"})
    sampler = _sampler(fake, clock)
    assert sampler.sample() == [] and not sampler.up
    clock[0] = 10.0
    assert sampler.sample() == [] and sampler.errors["library_not_found"] == 1  # not tried again yet
    del fake.fail["init"]
    clock[0] = 31.0
    assert len(sampler.sample()) == 8 and sampler.up


def test_a_driver_restart_is_survived() -> None:
    """GPU_IS_LOST mid-run: the sampler goes down (no stale gauges), then starts again after retry_s."""
    clock = [0.0]
    fake = FakeNvml()
    sampler = _sampler(fake, clock)
    assert len(sampler.sample()) == 8
    fake.fail["utilization"] = "gpu_is_lost"
    assert sampler.sample() == [] and not sampler.up and sampler.latest == []
    del fake.fail["utilization"]
    clock[0] = 31.0
    assert len(sampler.sample()) == 8 and fake.inits == 2


def test_a_binding_that_cannot_load_is_one_reason() -> None:
    """An adapter that cannot even be made (the binding missing) is counted, never raised."""

    def broken() -> FakeNvml:
        raise ImportError("No module named 'pynvml'")

    sampler = GpuSampler(broken)
    assert sampler.sample() == [] and sampler.errors == {"binding": 1}


def test_the_real_binding_on_a_machine_without_a_gpu() -> None:
    """nvidia-ml-py with no libnvidia-ml: the sampler is down with NVML's own reason (CI has no GPU)."""
    sampler = GpuSampler(PyNvml)
    samples = sampler.sample()
    if sampler.up:
        pytest.skip("this machine has NVML: the fake-adapter tests cover the sampler")
    assert samples == [] and set(sampler.errors) <= {"library_not_found", "driver_not_loaded", "binding"}
