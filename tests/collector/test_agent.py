# SPDX-License-Identifier: Apache-2.0
"""The Agent over a recording: the same alerts as the pipeline alone, errors counted, sinks closed at the end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collector.agent import Agent
from collector.config import Config
from collector.source.recording import RecordingSource
from probes.events import Event
from tests.collector.test_pipeline import CLOCK, CONTAINER_TREE, ListSink, _run
from tests.factories import write_recording


def _replay(path: Path, sink: ListSink) -> Agent:
    agent = Agent(Config(), [sink], RecordingSource(path), api=False)
    agent.load()
    asyncio.run(agent.run())
    return agent


def test_a_replay_raises_what_the_pipeline_raises_and_closes_the_sinks(tmp_path: Path) -> None:
    """Driven by the Agent, a recording gives the pipeline's own alerts for its events; then sinks are closed."""
    path = tmp_path / "rec"
    write_recording(path, CONTAINER_TREE, host="gpu-node-7", boot_id=CLOCK.boot_id,
                    realtime_offset_ns=CLOCK.realtime_offset_ns)
    closed: list[bool] = []
    sink = ListSink()
    sink.close = lambda: closed.append(True)  # type: ignore[method-assign]
    agent = _replay(path, sink)
    assert sink.alerts == _run(CONTAINER_TREE)[1].alerts and len(sink.alerts) == 1
    assert closed == [True] and agent.metrics.events["proc"] == 4


def test_the_replay_is_handed_over_in_batches_in_order(tmp_path: Path) -> None:
    """More events than one batch all arrive, in order."""
    n = RecordingSource.BATCH * 2 + 5
    events = [CONTAINER_TREE[4]] * n
    path = tmp_path / "rec"
    write_recording(path, events)
    agent = _replay(path, ListSink())
    assert agent.metrics.events["proc"] == n


def test_an_internal_error_costs_one_event_counted_and_the_replay_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside the pipeline drops that event, counted as pipeline_error; later events still alert."""
    path = tmp_path / "rec"
    write_recording(path, CONTAINER_TREE)
    sink = ListSink()
    agent = Agent(Config(), [sink], RecordingSource(path), api=False)
    handle = agent.pipeline.handle
    first = CONTAINER_TREE[3]

    def flaky(event: Event) -> None:
        if event == first:
            raise KeyError("bug")
        handle(event)

    monkeypatch.setattr(agent.pipeline, "handle", flaky)
    agent.load()
    asyncio.run(agent.run())
    assert agent.metrics.dropped["pipeline_error"] == 1
    assert len(sink.alerts) == 1 and agent.metrics.events["proc"] == 3


def test_stop_ends_a_replay_early_and_still_closes_everything(tmp_path: Path) -> None:
    """A stop (SIGINT/SIGTERM) during a replay ends it after the current batch; the sinks are closed."""
    path = tmp_path / "rec"
    write_recording(path, [CONTAINER_TREE[4]] * (RecordingSource.BATCH * 3))
    closed: list[bool] = []
    sink = ListSink()
    sink.close = lambda: closed.append(True)  # type: ignore[method-assign]
    agent = Agent(Config(), [sink], RecordingSource(path), api=False)
    agent.load()
    ingest = agent._ingest

    def ingest_then_stop(events: list[Event]) -> None:
        ingest(events)
        agent.stop()

    agent._ingest = ingest_then_stop  # type: ignore[method-assign]
    asyncio.run(agent.run())
    assert agent.metrics.events["proc"] == RecordingSource.BATCH and closed == [True]
