"""A simulation run written to a folder: every feed as the devices would store it, and the truth.

Layout of ``out_dir``::

    manifest.json              seed, deployment, settings, counts, file hashes
    cameras/{tower}.avi        FFV1 (lossless) 8-bit grayscale video; OpenCV reads it back exactly
    ugs.jsonl                  the UGS gateway's JSON lines, bad ones included as they came
    uas.tlog                   MAVLink 2 telemetry log (8-byte big-endian microseconds + packet)
    truth/movers.csv           every mover's position at each truth sample
    truth/crossings.csv        border crossings: time, position, segment, direction
    truth/cameras/{tower}.jsonl  per frame: the camera pointing and each visible object
    truth/ugs.jsonl            per ``ugs.jsonl`` line: its label (ok, malformed, skewed), cause
    truth/uas_detections.jsonl per aircraft detection: the mover it is and where it really was

The same seed gives the same files byte for byte; only ``manifest.json``'s ``created_utc``
and ``elapsed_s`` change between runs. (Matroska stamps a date and a random id into each
file, so the videos use AVI, which OpenCV writes without either.)
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from vigil.geo.site import Site

from .movers import SimError
from .perturbations import Perturbations
from .settings import SimSettings
from .uas import TelemetryItem, UasDetection
from .ugs import UgsMessage
from .video import VIDEO_FOURCC, VIDEO_SUFFIX, VideoError, VideoSink
from .world import CameraFrame, World

#: Above this many pixels to encode, each tower's video is encoded in its own process.
INLINE_VIDEO_MAX_PIXELS = 100_000_000
MANIFEST = "manifest.json"


def _jsonl(obj: Any) -> bytes:
    return msgspec.json.encode(obj) + b"\n"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def simulate_to_files(
    site: Site,
    settings: SimSettings | None,
    minutes: float,
    seed: int,
    out_dir: str | Path,
    progress: bool = True,
    video_processes: bool | None = None,
    perturbations: Perturbations | None = None,
) -> dict:
    """Run the simulator for ``minutes`` and write every feed and the truth to ``out_dir``.

    Parameters
    ----------
    site
        The sector's layout.
    settings
        Switches and rates (defaults when ``None``).
    minutes
        Simulated duration, minutes.
    seed
        Same seed, same files.
    out_dir
        Folder to write (created; existing files of the same names are replaced).
    progress
        Show a progress bar (tqdm) over simulated time.
    video_processes
        Encode each tower's video in its own process; by default only for long runs.
    perturbations
        What makes the world as hard as the field; ``None``: none (the world as before). The
        manifest's ``perturbations`` records them (:func:`perturbations_record`).

    Returns
    -------
    dict
        The manifest, as written to ``out_dir/manifest.json``.
    """
    if not (math.isfinite(minutes) and minutes > 0):
        raise SimError(f"minutes={minutes!r}; expected a positive number of minutes")
    st = settings or SimSettings()
    out = Path(out_dir)
    (out / "truth" / "cameras").mkdir(parents=True, exist_ok=True)
    wall0 = time.perf_counter()
    duration = float(minutes) * 60.0
    t0 = st.start_time
    t_end = t0 + duration
    pert = perturbations or Perturbations.none()
    world = World(site, st, seed, perturbations=pert)
    frame = world.frame
    sinks: dict[str, VideoSink] = {}
    if st.cameras == "render":
        (out / "cameras").mkdir(exist_ok=True)
        pixels = sum(
            v.camera.width * v.camera.height * world.fps[k] * duration
            for k, v in world.views.items()
        )
        if video_processes is None:
            video_processes = pixels > INLINE_VIDEO_MAX_PIXELS
        for tid, view in world.views.items():
            cam = view.camera
            sinks[tid] = VideoSink(
                out / "cameras" / f"{tid}{VIDEO_SUFFIX}",
                world.fps[tid],
                cam.width,
                cam.height,
                in_process=video_processes,
            )
    cam_truth = {
        tid: (out / "truth" / "cameras" / f"{tid}.jsonl").open("wb") for tid in world.views
    }
    ugs_f = (out / "ugs.jsonl").open("wb")
    ugs_truth = (out / "truth" / "ugs.jsonl").open("wb")
    tlog = (out / "uas.tlog").open("wb")
    uas_truth = (out / "truth" / "uas_detections.jsonl").open("wb")
    movers_f = (out / "truth" / "movers.csv").open("w", encoding="utf-8", newline="\n")
    movers_f.write("time,id,kind,class,group,x,y,lat,lon\n")

    frames: Counter[str] = Counter()
    objects: Counter[str] = Counter()
    ugs_counts: Counter[str] = Counter()
    packets: Counter[str] = Counter()
    uas_det = 0
    ugs_line = 0
    mover_rows = 0
    movers_seen: dict[str, str] = {}
    sample_k = 0

    def sample(t: float) -> None:
        nonlocal mover_rows
        s = world.states(t)
        if len(s) == 0:
            return
        lat, lon = frame.to_wgs84(s.x, s.y)
        rows = []
        for k in range(len(s)):
            rows.append(
                f"{t:.3f},{s.ids[k]},{s.kinds[k]},{s.classes[k]},{s.groups[k]},"
                f"{s.x[k]:.3f},{s.y[k]:.3f},{lat[k]:.7f},{lon[k]:.7f}\n"
            )
            movers_seen[s.ids[k]] = s.classes[k]
        movers_f.write("".join(rows))
        mover_rows += len(rows)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(duration), unit="sim s", desc="simulate", leave=False)
    shown = 0
    try:
        for item in world.items_until(t_end):
            while t0 + sample_k * st.truth_sample_s <= item.time:
                sample(t0 + sample_k * st.truth_sample_s)
                sample_k += 1
            if isinstance(item, CameraFrame):
                frames[item.tower] += 1
                objects[item.tower] += len(item.objects)
                if item.image is not None:
                    sinks[item.tower].write(item.image)
                cam = item.camera
                rec = {
                    "frame": item.frame,
                    "time": item.time,
                    "pan_deg": cam.pan_deg,
                    "tilt_deg": cam.tilt_deg,
                    "objects": [o.to_builtins() for o in item.objects],
                }
                cam_truth[item.tower].write(_jsonl(rec))
            elif isinstance(item, UgsMessage):
                ugs_f.write(item.payload + b"\n")
                kind = type(item.message).__name__ if item.message is not None else None
                ugs_truth.write(
                    _jsonl(
                        {
                            "line": ugs_line,
                            "time": item.time,
                            "sensor": item.sensor,
                            "message": kind,
                            "label": item.label,
                            "cause": list(item.cause),
                        }
                    )
                )
                ugs_line += 1
                ugs_counts[item.label] += 1
                ugs_counts[kind or "unreadable"] += 1
            elif isinstance(item, TelemetryItem):
                stamp = struct.pack(">Q", int(round(item.time * 1e6)))
                for p in item.packets:
                    tlog.write(stamp + p)
                packets["packets"] += len(item.packets)
                packets["telemetry"] += 1
            elif isinstance(item, UasDetection):
                m = item.message
                uas_truth.write(
                    _jsonl(
                        {
                            "time": item.time,
                            "aircraft": m.camera,
                            "id": item.mover_id,
                            "x": round(item.x, 3),
                            "y": round(item.y, 3),
                            "lat": m.lat,
                            "lon": m.lon,
                        }
                    )
                )
                uas_det += 1
            if bar is not None and item.time - t0 - shown >= 1.0:
                step = int(item.time - t0 - shown)
                bar.update(step)
                shown += step
        while t0 + sample_k * st.truth_sample_s < t_end:
            sample(t0 + sample_k * st.truth_sample_s)
            sample_k += 1
    finally:
        if bar is not None:
            bar.close()
        world.close()
        errors = []
        for s in sinks.values():
            try:
                s.close()
            except VideoError as exc:
                errors.append(exc)
        for f in [*cam_truth.values(), ugs_f, ugs_truth, tlog, uas_truth, movers_f]:
            f.close()
    if errors:
        raise errors[0]

    crossings = world.crossings(t_end)
    with (out / "truth" / "crossings.csv").open("w", encoding="utf-8", newline="\n") as f:
        f.write("crossing_id,group,class,count,time,x,y,lat,lon,segment_id,direction,origin\n")
        for c in crossings:
            lat, lon = frame.to_wgs84([c.x], [c.y])
            f.write(
                f"{c.crossing_id},{c.group_id},{c.cls},{c.count},{c.time:.3f},{c.x:.3f},"
                f"{c.y:.3f},{lat[0]:.7f},{lon[0]:.7f},{c.segment_id},{c.direction},{c.origin}\n"
            )

    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[p.relative_to(out).as_posix()] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
    video = {}
    for tid, view in world.views.items():
        video[tid] = {
            "file": f"cameras/{tid}{VIDEO_SUFFIX}" if tid in sinks else None,
            "codec": VIDEO_FOURCC if tid in sinks else None,
            "fps": world.fps[tid],
            "width": view.camera.width,
            "height": view.camera.height,
            "frames": frames[tid],
            "objects": objects[tid],
        }
    manifest = {
        "format": "vigil-sim/1",
        "seed": int(seed),
        "minutes": float(minutes),
        "start_time": t0,
        "end_time": t_end,
        "start_utc": datetime.fromtimestamp(t0, tz=UTC).isoformat(),
        "deployment": {f: msgspec.to_builtins(getattr(site, f)) for f in Site.__struct_fields__},
        "settings": msgspec.to_builtins(st),
        "perturbations": perturbations_record(world.perturbations),
        "counts": {
            "frames": dict(sorted(frames.items())),
            "camera_objects": dict(sorted(objects.items())),
            "ugs_lines": ugs_line,
            "ugs": dict(sorted(ugs_counts.items())),
            "uas_telemetry": packets["telemetry"],
            "uas_packets": packets["packets"],
            "uas_detections": uas_det,
            "mover_rows": mover_rows,
            "movers": len(movers_seen),
            "movers_by_class": dict(sorted(Counter(movers_seen.values()).items())),
            "crossings": len(crossings),
            "crossings_by": dict(
                sorted(Counter(f"{c.cls}:{c.direction}" for c in crossings).items())
            ),
        },
        "video": video,
        "files": files,
        "created_utc": datetime.now(tz=UTC).isoformat(),
        "elapsed_s": round(time.perf_counter() - wall0, 3),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out / MANIFEST).write_text(text)
    return json.loads(text)


#: Manifest keys that hold wall-clock facts and so differ between identical runs.
WALL_CLOCK_KEYS = ("created_utc", "elapsed_s")


def perturbations_record(perturbations: Perturbations | None) -> dict[str, Any]:
    """What world made a run, for its metadata: the families ``on`` and ``off`` (names) and
    every family's switch and sizes (``families``, units as in :mod:`.perturbations`);
    ``None`` is :meth:`Perturbations.none`."""
    perturbations = perturbations or Perturbations.none()
    names = Perturbations.__struct_fields__
    return {
        "on": [n for n in names if getattr(perturbations, n).on],
        "off": [n for n in names if not getattr(perturbations, n).on],
        "families": msgspec.to_builtins(perturbations),
    }


def read_manifest(out_dir: str | Path) -> dict:
    """The manifest of a run folder written by :func:`simulate_to_files`."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise SimError(f"no {MANIFEST} in {out_dir}; expected a folder from simulate_to_files")
    return json.loads(path.read_text())
