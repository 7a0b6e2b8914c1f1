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
from collector.cli.doctor import CHECKS_HELP  # the doctor --help epilog: stdlib and small probes modules only
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
    rich_markup_mode=None,  # plain click help: rich's renders every flag as '<bool>'
)

SinkOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sink",
        help="Where alerts go, repeatable: 'stdout' or 'jsonl:PATH' (appends, flushed per alert). Default: stdout.",
        metavar="SPEC",
    ),
]

# Examples epilogs: click keeps a paragraph that starts with \b as written.
RUN_EXAMPLES = """\
Alerts go to stdout (or the --sink targets), one JSON object per line; logs go to stderr.

\b
Examples:
  coalmine run                                   alerts on stdout, API on 127.0.0.1:9477
  coalmine run --sink jsonl:/var/log/coalmine/alerts.jsonl --sink stdout
  coalmine run --listen 0.0.0.0:9477             expose /metrics to a Prometheus scraper
  coalmine run --config /etc/coalmine/config.toml --record /var/tmp/events.msgpack
  curl -s 127.0.0.1:9477/readyz                  which sensors are attached
"""

REPLAY_EXAMPLES = """\
Alerts get the ids, times and host of the live run. A summary (events, alerts, malformed events skipped, and
whether the recording was cut short) goes to stderr; exit 1 when the file is not a recording.

\b
Examples:
  coalmine run --record events.msgpack           then, on any machine, without root:
  coalmine replay events.msgpack
  coalmine replay events.msgpack --sink jsonl:alerts.jsonl
  coalmine replay events.msgpack --config /etc/coalmine/config.toml   the live run's rules (gpu_approved)
"""


def _fail(message: str) -> typer.Exit:
    typer.echo(f"coalmine: {message}", err=True)
    return typer.Exit(code=1)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="coalmine: %(message)s", stream=sys.stderr)


@app.command(epilog=RUN_EXAMPLES)
def run(
    sink: SinkOpt = None,
    listen: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT",
            help="Serve /healthz, /readyz and /metrics here, answering once the probes are attached (~3 s)."
            " Default 127.0.0.1:9477 (loopback); [::1]:PORT for IPv6.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="TOML file with any of: sinks, listen, record, host, queue_size, ringbuf_pages, tracked_sockets, "
            "gpu_device_paths, gpu_device_majors, gpu_approved."
            " Flags override it.",
        ),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Also write every event to FILE (msgpack) for 'coalmine replay'."),
    ] = None,
) -> None:
    """Start the agent: load the eBPF sensors and raise alerts until SIGINT/SIGTERM.

    Needs root (or CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN), bcc, and kernel headers; 'coalmine doctor' says
    what is missing. Exits 1 with one line when it cannot start.
    """
    from collector import config as config_mod
    from collector.agent import Agent
    from collector.cli.doctor import can_load_bpf
    from collector.sinks import open_sink
    from collector.source.kernel import KernelSource
    from probes.loader import Probes

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
        probes = Probes(
            settings.ringbuf_pages, settings.tracked_sockets, settings.gpu_device_paths, settings.gpu_device_majors
        )
        agent = Agent(settings, sinks, KernelSource(settings.host, probes, settings.queue_size))
        agent.load()
        asyncio.run(agent.run())
    except CoalmineError as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:  # SIGINT while the probes compile: asyncio's handler is not set yet
        raise typer.Exit(code=130) from None


@app.command(epilog=REPLAY_EXAMPLES)
def replay(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A recording made with 'coalmine run --record FILE'.")
    ],
    sink: SinkOpt = None,
    config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="The live run's config file, for the rules it sets (gpu_approved); its sinks unless --sink is "
            "given. Its kernel and API settings are not used.",
        ),
    ] = None,
) -> None:
    """Run detection over a recording, without a kernel; alerts go to the sinks."""
    from collector.agent import Agent
    from collector.config import load
    from collector.sinks import open_sink
    from collector.source.recording import RecordingSource

    try:
        settings = load(config)
        settings.record = None
        settings.sinks = sink or (settings.sinks if config is not None else ["stdout"])
        source = RecordingSource(file)
        sinks = [open_sink(spec, sys.stdout) for spec in settings.sinks]
        agent = Agent(settings, sinks, source, api=False)
        agent.load()
        asyncio.run(agent.run())
    except CoalmineError as exc:
        raise _fail(str(exc)) from exc
    m = agent.metrics
    cut = "; the recording is cut short (its agent was killed?): what it held was replayed" if source.truncated else ""
    typer.echo(
        f"coalmine: replayed {sum(m.events.values())} events, {sum(m.alerts.values())} alerts, "
        f"{source.skipped} malformed events skipped{cut}",
        err=True,
    )


@app.command("doctor", epilog=CHECKS_HELP)
def doctor_command() -> None:  # not `doctor`: that would hide the collector.cli.doctor module
    """Check what this kernel and node support; exit 1 if the agent cannot run here.

    Each check prints one line: its status, its name, and what it found. BPF features are created for real
    (a map, or a tiny program) and freed at once; nothing is left loaded.
    """
    from collector.cli.doctor import report, run_checks

    table, code = report(run_checks())
    typer.echo(table, nl=not table.endswith("\n"))
    if code:
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
