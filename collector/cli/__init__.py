# SPDX-License-Identifier: Apache-2.0
"""The coalmine command line: run, replay, doctor."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from collector import __version__
from collector.errors import CoalmineError

app = typer.Typer(
    name="coalmine",
    help=(
        "eBPF telemetry for GPU nodes: catches crypto mining, reverse SSH tunnels and other covert "
        "channels at the syscall, naming the process tree, container and job. Alerts are JSON, one per line."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SinkOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sink",
        help="Where alerts go, repeatable: 'stdout' or 'jsonl:PATH' (appends, flushed per alert). Default: stdout.",
        metavar="SPEC",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"coalmine: {message}", err=True)
    return typer.Exit(code=1)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="coalmine: %(message)s", stream=sys.stderr)


@app.command()
def run(
    sink: SinkOpt = None,
    listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for /healthz, /readyz and /metrics, answering once the probes are attached (~3 s)."
            " Default 127.0.0.1:9477 (loopback)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML file with any of: sinks, listen, record, host, queue_size, ringbuf_pages, tracked_sockets."
        ),
    ] = None,
    record: Annotated[
        Path | None, typer.Option(help="Also write every event to this file (msgpack) for 'coalmine replay'.")
    ] = None,
) -> None:
    """Start the agent: load the eBPF sensors and raise alerts until SIGINT/SIGTERM.

    Needs root (or CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN), bcc, and kernel headers;
    'coalmine doctor' says what is missing. Exits 1 with one line when it cannot start.
    """
    from collector import config as config_mod
    from collector.agent import Agent
    from collector.cli.doctor import can_load_bpf
    from collector.sinks import open_sink

    _logging()
    try:
        settings = config_mod.load(config)
        if sink:
            settings.sinks = sink
        if listen is not None:
            config_mod.parse_listen(listen)
            settings.listen = listen
        if record is not None:
            settings.record = record
        if not can_load_bpf():
            raise _fail("must run as root (or with CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN) to load eBPF programs")
        try:
            import bcc  # noqa: F401
        except ImportError as exc:
            raise _fail(f"bcc is not importable ({exc}): install python3-bpfcc, e.g. with deploy/setup.sh") from exc
        sinks = [open_sink(spec, sys.stdout) for spec in settings.sinks]
        agent = Agent(settings, sinks)
        agent.load()
        asyncio.run(agent.run())
    except CoalmineError as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:  # SIGINT while the probes compile: asyncio's handler is not set yet
        raise typer.Exit(code=130) from None


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="A recording made with 'coalmine run --record FILE'.")],
    sink: SinkOpt = None,
) -> None:
    """Run detection over a recording, without a kernel; alerts go to the sinks."""
    from collector.alerts.clock import Clock
    from collector.pipeline import Pipeline
    from collector.sinks import open_sink
    from collector.source.recording import Replay

    try:
        recording = Replay(file)
        header = recording.header
        sinks = [open_sink(spec, sys.stdout) for spec in (sink or ["stdout"])]
        clock = Clock(str(header.get("boot_id", "unknown")), int(header.get("realtime_offset_ns", 0)))
        pipeline = Pipeline(str(header.get("host", "unknown")), clock, sinks)
        for event in recording:
            pipeline.handle(event)
        for s in sinks:
            s.close()
    except CoalmineError as exc:
        raise _fail(str(exc)) from exc
    m = pipeline.metrics
    typer.echo(
        f"coalmine: replayed {sum(m.events.values())} events, {sum(m.alerts.values())} alerts, "
        f"{recording.skipped} malformed events skipped",
        err=True,
    )


@app.command()
def doctor() -> None:
    """Check what this kernel and node support; exit 1 if the agent cannot run here."""
    from collector.cli.doctor import FAIL, run_checks

    checks = run_checks()
    width = max(len(c.name) for c in checks)
    for c in checks:
        typer.echo(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
    if any(c.status == FAIL for c in checks):
        raise _fail("cannot run here: fix the FAIL lines above")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"coalmine {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """coalmine."""


def main() -> None:
    app()
