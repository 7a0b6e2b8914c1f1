# SPDX-License-Identifier: Apache-2.0
"""Config files: defaults, overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import config
from collector.errors import ConfigError


def test_defaults() -> None:
    """No file: stdout sink, loopback API."""
    c = config.load(None)
    assert c.sinks == ["stdout"] and c.listen == "127.0.0.1:9477"


def test_gpu_devices(tmp_path: Path) -> None:
    """The GPU sensor's prefixes and majors default to NVIDIA's and AMD's and can be set."""
    assert config.load(None).gpu_device_paths == ["/dev/nvidia", "/dev/kfd", "/dev/dri/renderD"]
    assert config.load(None).gpu_device_majors == [195]
    path = tmp_path / "c.toml"
    path.write_text('gpu_device_paths = ["/dev/nvidia", "/dev/accel"]\ngpu_device_majors = [195, 261]\n')
    c = config.load(path)
    assert (c.gpu_device_paths, c.gpu_device_majors) == (["/dev/nvidia", "/dev/accel"], [195, 261])


def test_gpu_approved(tmp_path: Path) -> None:
    """gpu_approved is empty by default (gpu.unapproved is off) and takes a list of tables."""
    assert config.load(None).gpu_approved == []
    path = tmp_path / "c.toml"
    path.write_text('gpu_approved = [{exe = "/opt/train/*", uid = 1000}, {cgroup = "/kubepods.slice/*"}]\n')
    assert config.load(path).gpu_approved == [{"exe": "/opt/train/*", "uid": 1000}, {"cgroup": "/kubepods.slice/*"}]


def test_file_overrides(tmp_path: Path) -> None:
    """Every key of a valid file is applied."""
    path = tmp_path / "c.toml"
    path.write_text('sinks = ["jsonl:/var/log/coalmine.jsonl"]\nlisten = "[::1]:9000"\nhost = "n7"\nqueue_size = 10\n'
                    'ringbuf_pages = 256\nrecord = "/tmp/r.msgpack"\ntracked_sockets = 100000\n')
    c = config.load(path)
    assert (c.sinks, c.listen, c.host, c.queue_size, c.ringbuf_pages, c.record, c.tracked_sockets) == (
        ["jsonl:/var/log/coalmine.jsonl"], "[::1]:9000", "n7", 10, 256, Path("/tmp/r.msgpack"), 100000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sinks = [", "not valid TOML"),
        ("sink = ['stdout']", "unknown key 'sink'"),
        ("sinks = []", "sinks must be a non-empty list"),
        ("listen = '9477'", "not HOST:PORT"),
        ("listen = 'localhost:99999'", "not HOST:PORT"),
        ("queue_size = 0", "positive integer"),
        ("queue_size = true", "positive integer"),
        ("ringbuf_pages = 1000", "power of two"),
        ("tracked_sockets = 0", "positive integer"),
        ("gpu_device_paths = []", "non-empty list of path prefixes"),
        ("gpu_device_paths = ['/dev/nvidia\\\"x']", "letters, digits"),
        ("gpu_device_paths = ['/dev/a-very-long-gpu-prefix']", "1 to 16 bytes"),
        ("gpu_device_majors = [195, true]", "list of device major numbers"),
        ("gpu_device_majors = [0]", "1 to 4095"),
        ("gpu_approved = ['/usr/bin/*']", "a list of tables"),
        ("gpu_approved = [{pod = 'x'}]", "gpu_approved entry 1: keys must be some of"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake is named in one line, with the file."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        config.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_listen_parsing() -> None:
    """IPv4, IPv6 in brackets, and hostnames parse."""
    assert config.parse_listen("127.0.0.1:9477") == ("127.0.0.1", 9477)
    assert config.parse_listen("[::1]:9477") == ("::1", 9477)
    assert config.parse_listen("localhost:9477") == ("localhost", 9477)
    assert config.parse_listen("coalmine-api.monitoring.svc.cluster.local:8080") == (
        "coalmine-api.monitoring.svc.cluster.local",
        8080,
    )
    assert config.parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    assert config.parse_listen("[::]:65535") == ("::", 65535)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "localhost",  # no port
        "9477",
        ":9477",  # no host
        "localhost:",
        "localhost:http",  # a service name, not a number
        "localhost:65536",
        "localhost:-1",
        "localhost: 9477",
        "localhost:9477 ",
        "[::1]",  # IPv6 in brackets without a port
        "localhost:\u00b2",  # a superscript two: str.isdigit() says digit, int() refuses it
        "localhost:\u0669",  # ARABIC-INDIC DIGIT NINE: int() takes it; a port is ASCII
    ],
)
def test_listen_refuses_what_is_not_host_port(value: str) -> None:
    """Anything but HOST:PORT with a port in 0..65535 is a one-line ConfigError that quotes the value."""
    with pytest.raises(ConfigError, match="not HOST:PORT") as info:
        config.parse_listen(value)
    assert repr(value) in str(info.value) and "\n" not in str(info.value)
