"""The replay benchmark's recording: Vigil's recording file with what scoring needs in its header.

A :class:`Recording` is a recording of :mod:`vigil.ingest.recording` (the same file that
``vigil record`` writes): its messages are what the live run's bus carried into the sector's
core (camera detections, ground-sensor events and status, aircraft telemetry, operator
actions, and what it quarantined) and the alerts the run published, each with the pipeline
time it arrived at; its header's ``meta`` is a :class:`ReplayMeta` (the simulator settings
and seed, the site, the towers' footprints as they turned, the true crossings and the live
run's figures and summary), encoded as plain data and decoded into these types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from vigil.geo.site import Site
from vigil.ingest.jsonable import numpy_scalar
from vigil.ingest.recording import (
    RecordedMessage,
    Recorder,
    RecordingError,
    read_header,
    read_recording,
)
from vigil.ingest.schema import (
    KIND_OF,
    AlertAction,
    CameraDetection,
    SensorEvent,
    SensorStatus,
    Telemetry,
)
from vigil.sim import SimSettings
from vigil.sim.movers import CrossingTruth

#: Messages the sector's core takes from outside: what a replay feeds it.
INPUTS = (CameraDetection, SensorEvent, SensorStatus, Telemetry, AlertAction)
#: Their wire kinds, as a topic names them (``vigil.ingest.topics.expected_kind``).
INPUT_KINDS = frozenset(KIND_OF[t] for t in INPUTS)

_WHAT = "a recording made by `python -m benchmarks.bench_replay record`"
# JSON has no NaN or infinity (msgspec writes null): the figures' NaNs travel as these strings.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class Footprint(msgspec.Struct, frozen=True, array_like=True):
    """Where a tower looked from ``time`` (UTC s) on: its footprint, WKB in local metres."""

    time: float
    tower: str
    wkb: bytes


class ReplayMeta(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a replay and its scoring need beside the messages: the header's ``meta``.

    ``truth`` holds the crossings up to a minute past the end, ``earlier`` those made before
    the start by groups still walking (both as the live run scored them); ``live`` the run's
    figures (``benchmarks.replay_figures.FIGURES``) plus ``wall_s``; ``summary`` the whole
    ``Pipeline.summary``. Times are UTC seconds, ``duration_s`` seconds.
    """

    made_utc: str
    code: str
    seed: int
    duration_s: float
    sim: SimSettings
    site: Site
    footprints: list[Footprint]
    truth: list[CrossingTruth]
    earlier: list[CrossingTruth]
    live: dict[str, Any]
    summary: dict[str, Any]


class Recording(ReplayMeta, frozen=True, kw_only=True):
    """One recorded live run: its :class:`ReplayMeta`, its sector and its messages in the order
    the bus delivered them (``stream``)."""

    sector: str
    stream: list[RecordedMessage]

    @property
    def meta(self) -> ReplayMeta:
        """The recording less its messages."""
        return ReplayMeta(**{f: getattr(self, f) for f in ReplayMeta.__struct_fields__})


def save(recording: Recording, path: str | Path) -> None:
    """Write ``recording`` to ``path`` (gzip-compressed), atomically; an existing file is
    replaced."""
    path = Path(path)
    part = path.with_name(path.name + ".part")
    meta = _finite(msgspec.to_builtins(recording.meta, enc_hook=numpy_scalar))
    out = Recorder(
        part,
        recording.sector,
        started=recording.sim.start_time,
        meta=meta,
        flush_each=False,
        overwrite=True,
    )
    for m in recording.stream:
        out.write(m.topic, m.raw, m.t)
    out.close()
    part.replace(path)


def load_meta(path: str | Path) -> ReplayMeta:
    """The :class:`ReplayMeta` of a recording alone (its header; the messages are not read).

    Raises
    ------
    RecordingError
        The file is not a recording of this version, or one without the benchmark's ``meta``.
    """
    return _meta(path, read_header(path).meta)


def load(path: str | Path) -> Recording:
    """Read a recording written by :func:`save`.

    Raises
    ------
    RecordingError
        The file is not a recording of this version, has no benchmark ``meta``, or a line
        that is not a recorded message (the error names the line).
    """
    header, messages = read_recording(path)
    meta = _meta(path, header.meta)
    return Recording(**msgspec.structs.asdict(meta), sector=header.sector, stream=list(messages))


def _meta(path: str | Path, meta: dict[str, Any] | None) -> ReplayMeta:
    if meta is None:
        raise RecordingError(f"{path}: a recording without a replay's metadata; expected {_WHAT}")
    try:
        return msgspec.convert(_restored(meta), ReplayMeta)
    except msgspec.ValidationError as exc:
        raise RecordingError(f"{path}: line 1: damaged replay metadata ({exc})") from None


def _finite(value: Any) -> Any:
    """Plain data with NaN and infinities as the strings of :data:`_NON_FINITE`."""

    def leaf(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
        return v

    return _mapped(value, leaf)


def _restored(value: Any) -> Any:
    """What :func:`_finite` changed, back."""
    return _mapped(value, lambda v: _NON_FINITE.get(v, v) if isinstance(v, str) else v)


def _mapped(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """Plain data (dicts, lists, scalars) with ``leaf`` applied to every scalar."""
    if isinstance(value, dict):
        return {k: _mapped(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_mapped(v, leaf) for v in value]
    return leaf(value)
