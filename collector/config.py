# SPDX-License-Identifier: Apache-2.0
"""Agent settings: defaults, then a TOML file (--config), then command-line flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from collector.detect.gpu.unapproved import approvals
from collector.errors import ConfigError
from probes import gpu
from probes.errors import ProbeError

DEFAULT_LISTEN = "127.0.0.1:9477"


def default_host() -> str:
    """The node name: $NODE_NAME (set from spec.nodeName in Kubernetes), else the hostname."""
    return os.environ.get("NODE_NAME") or os.uname().nodename


@dataclass(slots=True)
class Config:
    sinks: list[str] = field(default_factory=lambda: ["stdout"])
    listen: str = DEFAULT_LISTEN
    record: Path | None = None
    host: str = field(default_factory=default_host)
    queue_size: int = 65536  # kernel records buffered between the reader thread and the pipeline
    ringbuf_pages: int = 1024  # kernel ring buffer size in pages (power of two)
    tracked_sockets: int = 16384  # connected sockets the kernel can hold awaiting their first payload
    # What the GPU sensor takes for a GPU device: path prefixes (up to 16 bytes each) and char-device majors
    gpu_device_paths: list[str] = field(default_factory=lambda: list(gpu.DEFAULT_PREFIXES))
    gpu_device_majors: list[int] = field(default_factory=lambda: list(gpu.DEFAULT_MAJORS))
    # Approved GPU workloads for gpu.unapproved (collector/detect/gpu/unapproved.py): empty, the rule is off
    gpu_approved: list[dict[str, Any]] = field(default_factory=list)


def _check_gpu(path: Path, key: str, value: Any) -> Any:
    """gpu_device_paths (prefixes the sensor compares: probes/gpu.py) and gpu_device_majors."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"config {path}: {key} must be {expected}, got {value!r}")

    if key == "gpu_approved":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise bad("a list of tables, e.g. [{exe = \"/opt/train/bin/*\"}, {cgroup = \"/kubepods*\", uid = 1000}]")
        try:
            approvals(value)
        except ValueError as exc:
            raise ConfigError(f"config {path}: gpu_approved {exc}") from None
        return value
    if key == "gpu_device_paths":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise bad("a non-empty list of path prefixes")
        prefixes: Sequence[str] = value
        majors: Sequence[int] = gpu.DEFAULT_MAJORS
    else:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad("a list of device major numbers")
        prefixes = gpu.DEFAULT_PREFIXES
        majors = value
    try:
        gpu.cflags(prefixes, majors)
    except ProbeError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    return value


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:PORT) to (host, port); ConfigError otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen address {value!r} is not HOST:PORT (e.g. {DEFAULT_LISTEN} or [::1]:9477)")
    return host.strip("[]"), int(port)


def load(path: Path | None) -> Config:
    """Defaults overlaid with the TOML file at ``path``; one-line ConfigError on any problem."""
    config = Config()
    if path is None:
        return config
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: not valid TOML: {exc}") from exc
    known = {f.name: f for f in fields(Config)}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"config {path}: unknown key {key!r} (known: {', '.join(known)})")
        setattr(config, key, _check_gpu(path, key, value) if key.startswith("gpu_") else _check(path, key, value))
    return config


def _check(path: Path, key: str, value: Any) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"config {path}: {key} must be {expected}, got {value!r}")

    if key == "sinks":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise bad("a non-empty list of sink specs")
        return value
    if key in ("listen", "host"):
        if not isinstance(value, str) or not value:
            raise bad("a non-empty string")
        if key == "listen":
            try:
                parse_listen(value)
            except ConfigError as exc:
                raise ConfigError(f"config {path}: {exc}") from None
        return value
    if key == "record":
        if not isinstance(value, str) or not value:
            raise bad("a file path")
        return Path(value)
    if key in ("queue_size", "tracked_sockets"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise bad("a positive integer")
        return value
    if key == "ringbuf_pages":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value & (value - 1):
            raise bad("a power of two")
        return value
    raise bad("valid")  # pragma: no cover  (every field of Config is handled above)
