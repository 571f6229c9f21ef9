"""Calibration: fit the class tables that :mod:`vigil.tracks.classes` reads, from labelled data,
and read and write them as calibration files.

A camera confusion table from detections labelled with the class of the body each one saw,
and a track-speed table from tracks labelled with the class of the body each followed
(``python -m benchmarks.bench_demo --calibrate`` fits both on simulated runs; a deployment
fits its own on its labelled data). A calibration file is TOML holding both tables
(:class:`ClassModel`, :func:`format_calibration`); a deployment names its own in
``[classes] calibration``. The simulator's tables ship as
``vigil/data/calibration/sim_towers.toml`` (:func:`sim_class_model`).
"""

from __future__ import annotations

import re
import stat
import tomllib
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np
from msgspec import Meta

from vigil.ingest.validation import explain, toml_line
from vigil.tracks.config import (
    CLASSES,
    ClassRow,
    SpeedRow,
    class_row_problem,
    speed_row_problem,
)

#: The simulator's calibration file, in the package's data (``vigil/data/calibration``).
SIM_CALIBRATION = ("data", "calibration", "sim_towers.toml")
#: A calibration file larger than this is refused, bytes.
MAX_CALIBRATION_BYTES = 4 * 1024 * 1024
MAX_ROWS = 10_000


class ClassModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A calibration file: a camera confusion table and a track-speed table.

    Attributes
    ----------
    fitted
        How the tables were fitted (command, data, date): for the people who read it.
    classes
        The order of the probability columns; must be ``["person", "vehicle", "animal"]``.
    camera
        Rows ``[guess, confidence_from, confidence_to, range_from_m, range_to_m, P(person),
        P(vehicle), P(animal)]`` (see :attr:`vigil.tracks.config.TrackerConfig.camera_class_model`).
    speed
        Rows ``[speed_from_mps, speed_to_mps, P(person), P(vehicle), P(animal)]`` (see
        :attr:`vigil.tracks.config.TrackerConfig.speed_class_model`).
    """

    fitted: Annotated[str, Meta(max_length=2000)] = ""
    classes: tuple[str, str, str] = CLASSES
    camera: Annotated[tuple[ClassRow, ...], Meta(max_length=MAX_ROWS)] = ()
    speed: Annotated[tuple[SpeedRow, ...], Meta(max_length=MAX_ROWS)] = ()


#: No tables: camera guesses count as "right with probability c" and speeds add nothing.
NEUTRAL_MODEL = ClassModel(fitted="neutral: no tables")


class CalibrationError(ValueError):
    """A calibration file error naming the file, the key, the value and the line."""

    def __init__(self, path: str | Path, key: str, value: Any, line: int | None, expected: str):
        self.path = str(path)
        self.key = key
        self.value = value
        self.line = line
        self.expected = expected
        where = f"{self.path}:{line}" if line else self.path
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{where}: {key} = {shown}: {expected}")


def parse_calibration(text: str, path: str | Path = "<string>") -> ClassModel:
    """Parse and check calibration TOML text; raises :class:`CalibrationError`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        line = int(m.group(1)) if m else None
        raise CalibrationError(path, "(syntax)", None, line, str(exc)) from None
    try:
        model = msgspec.convert(raw, ClassModel)
    except msgspec.ValidationError as exc:
        problem = explain(exc, raw, text)
        if problem.kind == "unknown_field":
            expected = f"unknown key; allowed here: {', '.join(ClassModel.__struct_fields__)}"
        else:
            expected = problem.message[:1].lower() + problem.message[1:]
        line = _row_line(text, problem.path) or problem.line
        key = problem.key or "(top level)"
        raise CalibrationError(path, key, problem.value, line, expected) from None
    if model.classes != CLASSES:
        raise CalibrationError(
            path,
            "classes",
            list(model.classes),
            toml_line(text, ["classes"]),
            f"expected {list(CLASSES)}: the columns the tracker reads, in its order",
        )
    for i, row in enumerate(model.camera):
        if (problem := class_row_problem(row)) is not None:
            line = _row_line(text, ("camera", i))
            raise CalibrationError(path, f"camera[{i}]", list(row), line, problem)
    for i, row in enumerate(model.speed):
        if (problem := speed_row_problem(model.speed, i)) is not None:
            line = _row_line(text, ("speed", i))
            raise CalibrationError(path, f"speed[{i}]", list(row), line, problem)
    return model


def load_calibration(path: str | Path) -> ClassModel:
    """Read a calibration file; raises :class:`CalibrationError` naming file, key and line."""
    p = Path(path)
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):
            raise CalibrationError(p, "(file)", str(p), None, "not a regular file")
        size = info.st_size
        if size > MAX_CALIBRATION_BYTES:
            raise CalibrationError(
                p, "(file)", size, None, f"{size} bytes; expected at most {MAX_CALIBRATION_BYTES}"
            )
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError(p, "(file)", str(p), None, "no such calibration file") from None
    except UnicodeDecodeError as exc:
        raise CalibrationError(p, "(file)", str(p), None, f"not UTF-8 text ({exc})") from None
    return parse_calibration(text, p)


def sim_calibration_path() -> Path:
    """The simulator's calibration file shipped with the package."""
    return Path(str(resources.files("vigil").joinpath(*SIM_CALIBRATION)))


#: A deployment names a calibration file shipped with the package as ``vigil:NAME.toml``.
SHIPPED_PREFIX = "vigil:"
_SHIPPED_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.toml$(?!\n)")


def shipped_calibration_path(name: str) -> Path:
    """The calibration file ``NAME.toml`` shipped with the package (``vigil:NAME.toml`` in a
    deployment); raises :class:`CalibrationError` for a name that is not a plain file name or
    not shipped."""
    folder = sim_calibration_path().parent
    path = folder / name
    if not _SHIPPED_NAME.match(name) or not path.is_file():
        shipped = ", ".join(f"{SHIPPED_PREFIX}{p.name}" for p in sorted(folder.glob("*.toml")))
        raise CalibrationError(
            SHIPPED_PREFIX + name, "(file)", SHIPPED_PREFIX + name, None,
            f"no such calibration file shipped with Vigil; shipped: {shipped}",
        )  # fmt: skip
    return path


@lru_cache(maxsize=1)
def sim_class_model() -> ClassModel:
    """The simulator's tower-camera and track-speed tables (read once)."""
    return load_calibration(sim_calibration_path())


def format_calibration(
    camera: Iterable[ClassRow], speed: Iterable[SpeedRow], fitted: str, header: str = ""
) -> str:
    """A calibration file's text for the tables :func:`calibrate_class_model` and
    :func:`calibrate_speed_model` fit, one row a line; ``header`` goes first as comments."""

    def cell(v: str | float) -> str:
        return msgspec.json.encode(v).decode() if isinstance(v, str) else repr(float(v))

    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [
        f"fitted = {msgspec.json.encode(fitted).decode()}",
        f"classes = {msgspec.json.encode(list(CLASSES)).decode()}",
        "",
    ]
    for name, rows in (("camera", camera), ("speed", speed)):
        lines.append(f"{name} = [")
        lines += [f"  [{', '.join(cell(v) for v in row)}]," for row in rows]
        lines += ["]", ""]
    return "\n".join(lines)


def _row_line(text: str, path: tuple) -> int | None:
    """The line of row ``path[1]`` of the top-level array ``path[0]`` (rows one a line or
    spread over several), or ``None`` when the path does not name a row."""
    if len(path) < 2 or path[0] not in ("camera", "speed") or not isinstance(path[1], int):
        return None
    start = toml_line(text, [path[0]])
    if start is None:
        return None
    lines = text.splitlines()
    depth, row = 0, -1
    for lineno in range(start, len(lines) + 1):
        line = lines[lineno - 1]
        if lineno == start:
            line = line.split("=", 1)[1] if "=" in line else ""
        in_string = False
        for ch in line:
            if in_string:
                in_string = ch != '"'
            elif ch == '"':
                in_string = True
            elif ch == "#":
                break
            elif ch == "[":
                depth += 1
                if depth == 2:
                    row += 1
                    if row == path[1]:
                        return lineno
            elif ch == "]":
                depth -= 1
                if depth <= 0:
                    return None
    return None


#: Default confidence bands of a calibrated camera confusion table: narrow where a detector's
#: rules put their (size-capped) confidences, so that each rule gets its own row.
CONFIDENCE_EDGES: tuple[float, ...] = (
    0.0, 0.135, 0.165, 0.19, 0.205, 0.215, 0.23, 0.255, 0.27, 0.32, 0.4, 0.5, 0.6, 0.65, 1.01,
)  # fmt: skip
#: Default range bands of a calibrated camera confusion table, metres.
RANGE_EDGES_M: tuple[float, ...] = (0.0, 750.0, 1250.0, 1750.0, 2250.0, 1e6)
#: Speed bands of a calibrated track-speed table, m/s.
SPEED_EDGES_MPS: tuple[float, ...] = (
    0.0, 0.15, 0.3, 0.5, 0.7, 0.9, 1.1, 1.4, 1.8, 2.5, 4.0, 6.0, 1000.0,
)  # fmt: skip


def calibrate_speed_model(
    speeds_mps: Iterable[float],
    truths: Iterable[str],
    edges: tuple[float, ...] = SPEED_EDGES_MPS,
    weights: Iterable[float] | None = None,
    prior: Iterable[SpeedRow] | None = None,
    prior_weight: float = 1.0,
) -> tuple[SpeedRow, ...]:
    """A track-speed class table from track speeds (m/s) labelled with the true class of
    the body each track followed (other labels are left out).

    Returns one row per band of ``edges``: ``(from, to, P(band | person), P(band |
    vehicle), P(band | animal))``, each class's counts with one added per band, so that no
    band rules a class out. With ``weights`` each speed counts that much; with ``prior`` (a
    table on the same bands) each class's counts get ``prior_weight`` speeds spread as the
    prior's column instead of the one per band.
    """
    v = np.asarray(list(speeds_mps), dtype=np.float64)
    t = np.asarray(list(truths), dtype=object)
    w = np.ones(v.size) if weights is None else np.asarray(list(weights), dtype=np.float64)
    if not (v.shape == t.shape == w.shape):
        raise ValueError(
            f"speeds and truths have lengths {v.size} and {t.size} (weights {w.size}); "
            "expected one of each"
        )
    keep = np.isin(t, CLASSES) & np.isfinite(v)
    v, t, w = v[keep], t[keep], w[keep]
    nb = len(edges) - 1
    band = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, nb - 1)
    base = None if prior is None else np.asarray([r[2:] for r in prior], dtype=np.float64)
    if base is not None and base.shape != (nb, len(CLASSES)):
        raise ValueError(f"prior has {base.shape[0]} rows; expected one per band ({nb})")
    probs = []
    for c, k in enumerate(CLASSES):
        counts = np.bincount(band[t == k], weights=w[t == k], minlength=nb)
        if base is None:
            counts = counts + 1.0
        else:
            counts = counts + prior_weight * base[:, c] / max(base[:, c].sum(), 1e-12)
        probs.append(counts / counts.sum())
    return tuple(
        (float(edges[b]), float(edges[b + 1]), *(round(float(p[b]), 6) for p in probs))
        for b in range(nb)
    )


def calibrate_class_model(
    guesses: Iterable[str],
    confidences: Iterable[float],
    ranges_m: Iterable[float],
    truths: Iterable[str],
    edges: tuple[float, ...] = CONFIDENCE_EDGES,
    range_edges_m: tuple[float, ...] = RANGE_EDGES_M,
    min_count: int = 20,
    backoff: float = 50.0,
    weights: Iterable[float] | None = None,
    base: Iterable[ClassRow] | None = None,
    backoff_bands: int = -1,
) -> tuple[ClassRow, ...]:
    """A camera confusion table from detections labelled with their true class.

    Parameters
    ----------
    guesses, confidences, ranges_m
        Each detection's class guess, confidence and range (m).
    truths
        Each detection's true class (one of :data:`vigil.tracks.config.CLASSES`; other labels,
        such as ``"none"`` for a false detection, are left out).
    edges, range_edges_m
        Confidence and range band edges.
    min_count
        Cells seen fewer times than this (over all classes) get no row.
    backoff
        Weight, in detections, of a class's all-range table in each range band: a class
        seen rarely at some range takes its probabilities mostly from the other ranges.
    weights
        How much each detection counts (default 1 each); ``min_count`` counts detections.
    base
        A table on the same bands to back off to instead of the all-range table, cell by
        cell where it has the cell: a class seen rarely at some range keeps what ``base``
        says of it there (a sector's few labelled people, all seen near a tower, say nothing
        of people far away).
    backoff_bands
        -1: back off to the all-range table (or ``base``'s cell); ``n >= 0``: to this fit's
        own detections in the range bands within ``n`` of the cell's (``base`` only for a
        class with none at the cell's range). Under another detector than ``base``'s the
        same guess and confidence mean something else, and a neighbouring range says more of
        a far cell than the near bands that dominate the all-range table.
    Returns
    -------
    Rows ``(guess, from, to, range_from, range_to, P(guess, band | person, range band),
    ... vehicle, ... animal)``.
    """
    g = np.asarray(list(guesses), dtype=object)
    c = np.asarray(list(confidences), dtype=np.float64)
    r = np.asarray(list(ranges_m), dtype=np.float64)
    t = np.asarray(list(truths), dtype=object)
    w = np.ones(g.size) if weights is None else np.asarray(list(weights), dtype=np.float64)
    if not (g.shape == c.shape == r.shape == t.shape == w.shape):
        raise ValueError(
            f"guesses, confidences, ranges and truths have lengths {g.size}, {c.size}, "
            f"{r.size}, {t.size} (weights {w.size}); expected one of each per detection"
        )
    keep = np.isin(t, CLASSES) & np.isfinite(r)
    g, c, r, t, w = g[keep], c[keep], r[keep], t[keep], w[keep]
    band = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, len(edges) - 2)
    rband = np.clip(np.searchsorted(range_edges_m, r, side="right") - 1, 0, len(range_edges_m) - 2)
    guess_names = (*CLASSES, "unknown")
    cells = len(guess_names) * (len(edges) - 1)
    base_cells = {tuple(row[:5]): row[5:] for row in base or ()}
    rows = []
    for rb in range(len(range_edges_m) - 1):
        here = rband == rb
        totals = {k: float(w[here & (t == k)].sum()) for k in CLASSES}
        for guess in guess_names:
            for b in range(len(edges) - 1):
                sel = here & (g == guess) & (band == b)
                if sel.sum() < min_count:
                    continue
                # a class seen little at this range backs off to its all-range table (or base's)
                probs = []
                cell = (guess, float(edges[b]), float(edges[b + 1]))
                cell += (float(range_edges_m[rb]), float(range_edges_m[rb + 1]))
                prior = base_cells.get(cell)
                near = (
                    np.abs(rband - rb) <= backoff_bands
                    if backoff_bands >= 0
                    else np.ones_like(here)
                )
                for i, k in enumerate(CLASSES):
                    anywhere = (
                        float(w[near & (g == guess) & (band == b) & (t == k)].sum()) + 1
                    ) / (float(w[near & (t == k)].sum()) + cells)
                    if prior is not None and (backoff_bands < 0 or totals[k] <= 0.0):
                        anywhere = float(prior[i])
                    probs.append(
                        (float(w[sel & (t == k)].sum()) + backoff * anywhere)
                        / (totals[k] + backoff)
                    )
                rows.append(
                    (
                        guess,
                        float(edges[b]),
                        float(edges[b + 1]),
                        float(range_edges_m[rb]),
                        float(range_edges_m[rb + 1]),
                        *(round(p, 6) for p in probs),
                    )
                )
    return tuple(rows)
