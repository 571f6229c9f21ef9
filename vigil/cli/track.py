"""``vigil track``: tracks from a CSV file of detections."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.cli.arguments import existing_file, output_file, positive_float
from vigil.cli.common import EXIT_OK, EXIT_USAGE, CommandError, Subparsers

if TYPE_CHECKING:
    from vigil.tracks.config import TrackerConfig

#: ``vigil track`` flags and the ``[tracker]`` key each sets (after the file's value).
FLAG_KEYS = {
    "gate_probability": "gate_probability",
    "max_coast_s": "max_coast_s",
    "tentative_max_gap_s": "tentative_max_gap_s",
    "process_noise": "process_noise",
    "initial_speed_sigma": "initial_speed_sigma_mps",
    "default_sigma": "default_sigma_m",
    "max_position_sigma": "max_position_sigma_m",
    "report_coast_sigma_ratio": "report_coast_sigma_ratio",
}


def time_zone(text: str) -> str:
    """An IANA time zone name (``America/Phoenix``), checked."""
    if text == "UTC":  # the default, always there: no time zone database to load
        return text
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r}: unknown time zone (expected an IANA name, e.g. America/Phoenix)"
        ) from None
    return text


def confirmation(text: str) -> tuple[int, int]:
    """``M/N``: confirm a track with M detections in its last N scans (1 <= M <= N <= 31)."""
    m_text, slash, n_text = text.partition("/")
    try:
        m, n = int(m_text), int(n_text)
    except ValueError:
        m = n = 0
    if not slash or not 1 <= m <= n <= 31:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected M/N, M detections in the last N scans, 1 <= M <= N <= 31"
        )
    return m, n


def load_track_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> TrackerConfig:
    """The tracker settings of a ``vigil track --config`` TOML file: a ``[tracker]`` table,
    the same as a deployment file's (:class:`vigil.tracks.config.TrackerSettings`), or a
    whole deployment file (its ``[tracker]`` and its ``[classes]`` model), with
    ``overrides`` (key: value, from flags) over it; ``path`` ``None`` is the defaults.
    Raises :class:`vigil.config_sections.ConfigError` naming the key, the value and the line.
    """
    import tomllib

    import msgspec

    from vigil.ingest.validation import explain, toml_line
    from vigil.tracks.config import TRACK_DEFAULTS, TrackerConfig, TrackerSettings

    track_file = msgspec.defstruct(
        "TrackFile", [("tracker", TrackerSettings, TrackerSettings())], forbid_unknown_fields=True
    )

    text = ""
    raw: dict[str, Any] = {}
    where: str | Path = path if path is not None else "(flags)"
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
            raw = tomllib.loads(text)
        except (OSError, UnicodeDecodeError) as exc:
            from vigil.config_sections import ConfigError

            raise ConfigError(path, "(file)", str(path), None, f"cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            from vigil.config_sections import ConfigError

            raise ConfigError(path, "(syntax)", None, None, str(exc)) from None
    parts: tuple[Any, ...] = ((1 / 3, 1 / 3, 1 / 3),)
    if "sector" in raw:  # a whole deployment file: its [tracker] and its [classes] model
        from vigil.config import parse

        deployment = parse(text, path or "")
        parts = (
            deployment.config.classes.prior,
            deployment.class_model.camera,
            deployment.class_model.speed,
        )
        raw, text = {"tracker": msgspec.to_builtins(deployment.config.tracker)}, ""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    table = merged.get("tracker", {})
    if isinstance(table, dict):  # vigil track's defaults under the file's
        counts = ("confirm_m" in table or "confirm_n" in table) and "track_score" not in table
        merged["tracker"] = {**TRACK_DEFAULTS, **({"track_score": False} if counts else {})}
        merged["tracker"].update(table)
    if overrides:
        table = merged.setdefault("tracker", {})
        if isinstance(table, dict):
            table.update(overrides)
    try:
        settings = msgspec.convert(merged, track_file).tracker
    except msgspec.ValidationError as exc:
        from vigil.config_sections import ConfigError

        problem = explain(exc, merged, text or None)
        hint = problem.message
        if problem.kind == "unknown_field":
            allowed = (
                "tracker"
                if len(problem.path) == 1
                else ", ".join(TrackerSettings.__struct_fields__)
            )
            hint = f"unknown key; allowed here: {allowed}"
        line = problem.line
        if len(problem.path) == 2 and problem.path[1] in (overrides or {}):
            where, line = "command line", None  # the flag's value, not the file's
        raise ConfigError(where, problem.key, problem.value, line, hint) from None
    try:
        return TrackerConfig.from_parts(settings, *parts)
    except ValueError as exc:  # a rule across keys: name the first key in the message
        from vigil.config_sections import ConfigError

        words = str(exc).split(": ", 1)[-1]  # "confirm_m = 4 > confirm_n = 3; expected ..."
        key = words.split(" = ")[0].strip()
        line = toml_line(text, ["tracker", key]) if text else None
        value = getattr(settings, key, None)
        raise ConfigError(where, f"tracker.{key}", value, line, words) from None


def one_blas_thread() -> None:
    """Ask numpy's OpenBLAS for one thread when numpy is not loaded yet (a new ``vigil
    track`` process). OpenBLAS starts a thread pool when numpy is imported, about 50 ms of
    CPU on a 2-core machine (numpy's import takes 100 ms of CPU with it, 57 ms without);
    tracking never calls BLAS (its linear algebra is in compiled kernels, 4x4 at most). A
    value already set in the environment is kept; a process that has numpy loaded (tests,
    benchmarks calling :func:`vigil.cli.main`) is not changed."""
    import os

    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def cmd_track(args: argparse.Namespace) -> int:
    """Track detections from a CSV file."""
    one_blas_thread()
    if _own_process():
        # a one-shot process whose objects are freed by their counts (it makes no
        # reference cycles to speak of) and all at once by _exit_now: the cyclic
        # collector's passes over the imports' objects were 8-10 ms of CPU
        import gc

        gc.disable()
    from vigil.tracks.csvfile import CsvError, run_track

    centre = None
    if args.centre:
        try:
            lat, lon = (float(v) for v in args.centre.split(","))
        except ValueError:
            print(f"error: --centre {args.centre!r}: expected LAT,LON in degrees", file=sys.stderr)
            return EXIT_USAGE
        centre = (lat, lon)
    flags = {key: getattr(args, flag) for flag, key in FLAG_KEYS.items()}
    overrides: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if args.confirm is not None:
        overrides["confirm_m"], overrides["confirm_n"] = args.confirm
        overrides["track_score"] = False  # M/N scans asked for: counts, not evidence
    if args.management is not None:
        overrides["track_score"] = args.management == "evidence"
    try:
        config = load_track_config(args.config, overrides)
    except ValueError as exc:
        # imported only here: vigil.config_sections brings in the detectors (OpenCV, numba),
        # a second of start-up that tracking does not need
        from vigil.config_sections import ConfigError

        if not isinstance(exc, ConfigError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        s = run_track(
            args.detections,
            args.out,
            args.frame,
            centre=centre,
            config=config,
            timezone=args.timezone,
            report_max_sigma_m=args.report_max_sigma,
        )
    except CsvError as exc:
        raise CommandError(str(exc)) from None
    print(
        f"{s.detections} detections in {s.batches} batches -> {s.tracks} confirmed tracks, "
        f"{s.rows_written} rows written to {Path(args.out).resolve()}"
    )
    if _own_process():
        _exit_now(EXIT_OK)
    return EXIT_OK


def _own_process() -> bool:
    """Whether this ``vigil track`` is the process's own command line (``python -m
    vigil.cli track ...`` or the ``vigil`` script with ``sys.argv``), not a call of
    :func:`vigil.cli.main` from other code (tests, benchmarks), which goes on afterwards."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    by_module = spec is not None and spec.name == "vigil.cli.__main__"
    by_script = Path(getattr(main, "__file__", None) or "").name == "vigil"
    return (by_module or by_script) and sys.argv[1:2] == ["track"]


def _exit_now(status: int) -> None:
    """End a finished ``vigil track`` process at once: its output file is closed and its
    summary printed (flushed here), and nothing else is left to run; the interpreter's
    teardown (freeing every module's objects, numpy's and pyarrow's libraries' exit
    handlers: about 45 ms of CPU, 0.15 ms a scan over 300 scans) is skipped."""
    import contextlib
    import os

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to keep
            stream.flush()
    os._exit(status)


def register(sub: Subparsers) -> None:
    """Add ``track`` to the top-level subcommands."""
    p = sub.add_parser(
        "track",
        help="track detections from a CSV file",
        description=(
            "Track detections from CSV (columns t,x,y in local metres, or t,lat,lon; optional "
            "sensor and sigma) or from a GeoJSON FeatureCollection of Points (properties t, "
            "optional sensor and sigma; with --frame wgs84) and write t,track_id,x,y,vx,vy (or "
            "lat,lon) and time (t as ISO 8601 with its offset, see --timezone) for confirmed "
            "tracks. Tower (camera) rows may instead give bearing_deg from sensor_x,sensor_y "
            "(and sensor_height, m) with range_m or depression_deg and sigma_bearing_deg, "
            "sigma_range_m or sigma_depression_deg (local frame): the tracker updates them by "
            "their own polar model. A bad row stops with an error naming the line (or feature) "
            "and the column."
        ),
    )
    p.add_argument("detections", type=existing_file, help="detections CSV or GeoJSON")
    p.add_argument("--out", required=True, metavar="CSV", type=output_file, help="tracks CSV")
    p.add_argument("--frame", choices=("local", "wgs84"), default="local", help="output frame")
    p.add_argument(
        "--centre", metavar="LAT,LON", help="centre of the tracking frame for wgs84 input"
    )
    p.add_argument(
        "--timezone",
        default="UTC",
        type=time_zone,
        metavar="ZONE",
        help="IANA time zone of the output's time column (ISO 8601 with offset; default UTC)",
    )
    add_settings(p)
    p.set_defaults(func=cmd_track)


def add_settings(p: argparse.ArgumentParser) -> None:
    """The tracker's settings: a file and flags for the common ones (flags win)."""
    g = p.add_argument_group(
        "tracker settings",
        "A --config file holds a [tracker] table, the same keys as the deployment file's "
        "(vigil config show prints them), or is a whole deployment file; the flags below "
        "override it. Times are seconds. By default tracks are confirmed and ended by "
        "evidence (each track's log-likelihood ratio of target against clutter, the "
        "clutter density estimated from the data), which suits scans from 0.1 s to 5 s "
        "and each row's sigma.",
    )
    g.add_argument(
        "--management",
        choices=("evidence", "counts"),
        help="confirm and end tracks by evidence (default) or by M/N scan counts (--confirm)",
    )
    g.add_argument("--config", type=existing_file, metavar="TOML", help="[tracker] settings file")
    g.add_argument(
        "--gate-probability",
        type=float,
        metavar="P",
        help="chi-square gate probability (0.5-1, default 0.999)",
    )
    g.add_argument(
        "--confirm",
        type=confirmation,
        metavar="M/N",
        help="M detections in N scans (3/4; implies --management counts)",
    )
    g.add_argument(
        "--max-coast-s",
        type=positive_float,
        metavar="S",
        help="a confirmed track with no detection for this long is deleted (5 s)",
    )
    g.add_argument(
        "--tentative-max-gap-s",
        type=positive_float,
        metavar="S",
        help="a tentative track with no detection for this long is deleted (2.5 s)",
    )
    g.add_argument(
        "--process-noise",
        type=positive_float,
        metavar="Q",
        help=(
            "constant-velocity acceleration noise, m^2/s^3 per axis (0.005: the quiet "
            "model of the default interacting multiple model; its manoeuvring model, 0.3, "
            "is imm_process_noise in --config, 0 for one filter)"
        ),
    )
    g.add_argument(
        "--initial-speed-sigma",
        type=positive_float,
        metavar="MPS",
        help="velocity sigma per axis of a new track, m/s (1.5, people on foot)",
    )
    g.add_argument(
        "--default-sigma",
        type=positive_float,
        metavar="M",
        help="measurement sigma per axis for rows without a sigma column, m (5)",
    )
    g.add_argument(
        "--max-position-sigma",
        type=positive_float,
        metavar="M",
        help="a track whose position sigma exceeds this is deleted, m (200)",
    )
    g.add_argument(
        "--report-coast-sigma-ratio",
        type=float,
        metavar="K",
        help=(
            "write a coasting track only while its position sigma is at most K times the "
            "batch's detection sigma (2; 0 writes every coasting track)"
        ),
    )
    g.add_argument(
        "--report-max-sigma",
        type=positive_float,
        metavar="M",
        help=(
            "write a coasting track (no detection this scan) only while its larger position "
            "sigma is at most this, m; it keeps coasting and its id (overrides the ratio)"
        ),
    )
