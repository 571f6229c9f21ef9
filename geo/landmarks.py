"""Tower pointing calibration from surveyed landmarks: the files and the steps around the solve.

``vigil calibrate tower T --landmarks FILE`` reads a landmarks file (:func:`read_landmarks`),
solves the tower camera's pointing on the sector's ground (:func:`calibrate_tower`, through
:func:`vigil.geo.pointing.calibrate_pointing`), and writes the result into a pointing
calibration file (:func:`write_pointing_file`) that the deployment references; the service
then builds each tower's camera with its offsets applied (:func:`apply_pointing`), and gives
the calibration's standard errors to the ground positions' covariance.

Landmarks file: CSV with a header ``name,u,v,lat,lon,height_m``: a surveyed point's name, the
pixel where the tower's camera sees it (``u`` right, ``v`` down, pixels) and its WGS84
position and height (metres, the DEM's vertical datum). At most :data:`MAX_LANDMARKS` rows and
:data:`MAX_FILE_BYTES`; every value is checked, and an error names the file, line and column.

Pointing calibration file: TOML, one ``[[towers]]`` table per tower (:class:`TowerPointing`).
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import msgspec
import numpy as np
from msgspec import Meta
from numpy.typing import NDArray

from vigil.geo.camera import PinholeCamera
from vigil.geo.dem import ElevationModel, TerrainError
from vigil.geo.pointing import PointingCalibration, calibrate_pointing
from vigil.geo.raycast import camera_on_terrain
from vigil.geo.site import Site, tower_camera

#: Most landmarks one file may hold.
MAX_LANDMARKS = 1000
#: Largest landmarks or calibration file read, bytes.
MAX_FILE_BYTES = 1024 * 1024
LANDMARK_COLUMNS = ("name", "u", "v", "lat", "lon", "height_m")

Offset = Annotated[float, Meta(ge=-45.0, le=45.0, description="degrees")]
Sigma = Annotated[float, Meta(ge=0.0, le=45.0, description="degrees")]


class TowerPointing(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One tower's pointing calibration: offsets added to the deployment's pan, tilt and roll,
    the field of view when it was solved, and how well the landmarks pinned them down."""

    id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$(?!\n)")]
    pan_offset_deg: Offset
    tilt_offset_deg: Offset
    roll_offset_deg: Offset
    hfov_deg: Annotated[float, Meta(gt=0.0, lt=180.0)] | None = None
    pan_sigma_deg: Sigma = 0.0
    tilt_sigma_deg: Sigma = 0.0
    roll_sigma_deg: Sigma = 0.0
    rms_px: Annotated[float, Meta(ge=0.0)] = 0.0
    landmarks: Annotated[int, Meta(ge=0)] = 0


class PointingFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A pointing calibration file: one table per tower."""

    towers: list[TowerPointing] = []


@dataclass(frozen=True)
class Landmarks:
    """Surveyed landmarks as read: names, pixels ``(n, 2)``, ``lat``, ``lon``, heights (m)."""

    names: list[str]
    pixels: NDArray[np.float64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    height_m: NDArray[np.float64]


def _read_bounded(path: Path, what: str) -> str:
    if not path.is_file():
        raise TerrainError(f"{what} {str(path)!r}: no such file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TerrainError(f"{what} {str(path)!r} is {size} bytes; at most {MAX_FILE_BYTES}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TerrainError(f"{what} {str(path)!r} is not UTF-8 text ({exc.reason})") from None


def read_landmarks(path: str | Path) -> Landmarks:
    """Read and check a landmarks CSV (see the module text); errors name line and column."""
    p = Path(path)
    rows = list(csv.reader(io.StringIO(_read_bounded(p, "landmarks file"))))
    if not rows or tuple(c.strip() for c in rows[0]) != LANDMARK_COLUMNS:
        got = rows[0] if rows else []
        raise TerrainError(f"{p}: line 1: header {got!r}; expected {','.join(LANDMARK_COLUMNS)}")
    body = [(n, r) for n, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    if len(body) > MAX_LANDMARKS:
        raise TerrainError(f"{p}: {len(body)} landmarks; at most {MAX_LANDMARKS}")
    names: list[str] = []
    values = np.empty((len(body), 5))
    limits = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "height_m": (-500.0, 9000.0)}
    for k, (line, row) in enumerate(body):
        if len(row) != len(LANDMARK_COLUMNS):
            raise TerrainError(
                f"{p}: line {line}: {len(row)} columns; expected {len(LANDMARK_COLUMNS)}"
            )
        name = row[0].strip()
        if not name or len(name) > 64 or not name.isprintable():
            raise TerrainError(
                f"{p}: line {line}: column name: {name[:80]!r}; expected 1-64 printable characters"
            )
        names.append(name)
        for c, column in enumerate(LANDMARK_COLUMNS[1:]):
            text = row[c + 1].strip()
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            lo, hi = limits.get(column, (-1e6, 1e6))
            if not (math.isfinite(value) and lo <= value <= hi):
                raise TerrainError(
                    f"{p}: line {line}: column {column}: {text[:80]!r}; expected a number in "
                    f"[{lo:g}, {hi:g}]"
                )
            values[k, c] = value
    return Landmarks(names, values[:, :2], values[:, 2], values[:, 3], values[:, 4])


def calibrate_tower(
    site: Site,
    tower_id: str,
    landmarks: Landmarks,
    dem: ElevationModel,
    *,
    solve_focal: bool = False,
) -> tuple[TowerPointing, PointingCalibration]:
    """Solve one tower's pointing from landmarks on the sector's ground.

    Returns the calibration file's entry and the full solution (residuals per landmark in
    pixels and metres). Raises :class:`TerrainError` for an unknown tower, a pixel outside the
    tower's image, or what :func:`vigil.geo.pointing.calibrate_pointing` refuses.
    """
    towers = {t.id: t for t in site.towers}
    if tower_id not in towers:
        raise TerrainError(f"tower {tower_id!r} is not in the deployment; have {sorted(towers)}")
    tower = towers[tower_id]
    cam = camera_on_terrain(tower_camera(tower, site.frame()), dem)
    px = landmarks.pixels
    outside = (px[:, 0] < 0) | (px[:, 0] > cam.width) | (px[:, 1] < 0) | (px[:, 1] > cam.height)
    if np.any(outside):
        k = int(np.flatnonzero(outside)[0])
        raise TerrainError(
            f"landmark {landmarks.names[k]!r} at pixel ({px[k, 0]:g}, {px[k, 1]:g}) is outside "
            f"tower {tower_id!r}'s {cam.width} x {cam.height} image"
        )
    x, y = site.frame().to_local(landmarks.lat, landmarks.lon)
    points = np.column_stack([x, y, landmarks.height_m])
    cal = calibrate_pointing(cam, px, points, solve_focal=solve_focal, dem=dem)
    if not all(math.isfinite(s) for s in cal.sigma_deg):
        raise TerrainError(
            f"tower {tower_id!r}: the landmarks do not pin the pointing down (they lie on one "
            "line or point); survey points spread across the image"
        )
    entry = TowerPointing(
        id=tower_id,
        pan_offset_deg=cal.pan_offset_deg,
        tilt_offset_deg=cal.tilt_offset_deg,
        roll_offset_deg=cal.roll_offset_deg,
        hfov_deg=cal.hfov_deg if solve_focal else None,
        pan_sigma_deg=cal.sigma_deg[0],
        tilt_sigma_deg=cal.sigma_deg[1],
        roll_sigma_deg=cal.sigma_deg[2],
        rms_px=cal.rms_px,
        landmarks=int(px.shape[0]),
    )
    return entry, cal


def apply_pointing(camera: PinholeCamera, pointing: TowerPointing) -> PinholeCamera:
    """The camera with a calibration's offsets (and field of view, when solved) applied."""
    return replace(
        camera,
        pan_deg=(camera.pan_deg + pointing.pan_offset_deg) % 360.0,
        tilt_deg=camera.tilt_deg + pointing.tilt_offset_deg,
        roll_deg=camera.roll_deg + pointing.roll_offset_deg,
        hfov_deg=pointing.hfov_deg if pointing.hfov_deg is not None else camera.hfov_deg,
    )


def read_pointing_file(
    path: str | Path, towers: Collection[str] | None = None
) -> dict[str, TowerPointing]:
    """A pointing calibration file's entries by tower id; errors name the file and the key.

    ``towers``, when given, are the deployment's tower ids: an entry for any other is an error.
    """
    p = Path(path)
    text = _read_bounded(p, "pointing calibration file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TerrainError(f"{p}: not TOML: {exc}") from None
    try:
        parsed = msgspec.convert(data, PointingFile)
    except msgspec.ValidationError as exc:
        raise TerrainError(f"{p}: {exc}") from None
    out: dict[str, TowerPointing] = {}
    for entry in parsed.towers:
        if entry.id in out:
            raise TerrainError(f"{p}: tower {entry.id!r} appears twice")
        if towers is not None and entry.id not in towers:
            raise TerrainError(
                f"{p}: towers[{len(out)}].id = {entry.id!r}: not a tower of the deployment; "
                f"expected one of {', '.join(sorted(towers)) or '(none)'}"
            )
        out[entry.id] = entry
    return out


def format_pointing_file(entries: dict[str, TowerPointing]) -> str:
    """The TOML text of a pointing calibration file, towers in id order."""
    lines = [
        "# Vigil pointing calibration: offsets added to each tower's pan, tilt and roll",
        "# (degrees), solved from surveyed landmarks by `vigil calibrate tower`.",
    ]
    for tid in sorted(entries):
        e = entries[tid]
        lines += ["", "[[towers]]", f'id = "{e.id}"']
        for field in TowerPointing.__struct_fields__[1:]:
            value = getattr(e, field)
            if value is not None:
                lines.append(f"{field} = {value!r}")
    return "\n".join(lines) + "\n"


def write_pointing_file(path: str | Path, entry: TowerPointing) -> dict[str, TowerPointing]:
    """Add or replace one tower's entry in a pointing calibration file (created if absent);
    returns all entries now in the file."""
    p = Path(path)
    entries = read_pointing_file(p) if p.exists() else {}
    entries[entry.id] = entry
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(format_pointing_file(entries), encoding="utf-8")
    tmp.replace(p)
    return entries
