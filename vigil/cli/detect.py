"""``vigil detect``: motion detection over a video file or image sequence."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vigil.cli.arguments import (
    EmptyOutputsRemoved,
    existing_file,
    input_source,
    output_dir,
    output_file,
    positive_float,
    time_arg,
)
from vigil.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Subparsers,
    load_deployment,
)

#: --sensor's choices (vigil.detection.sensor_defaults.SENSOR_CHOICES; not imported here, so
#: that the command line starts without loading the detector)
SENSOR_CHOICES = ("thermal", "daylight", "auto")


def cmd_detect(args: argparse.Namespace) -> int:
    """Detect motion in a video file or image sequence."""
    from vigil.detection.background import DetectionError
    from vigil.detection.detector import DetectorConfig
    from vigil.detection.video import VideoInputError, load_camera_config, run_detect

    geometry = None
    fps = args.fps
    start = args.start
    try:
        if args.camera_config:
            setup = load_camera_config(args.camera_config)
            geometry = setup.geometry
            fps = fps or setup.fps
            start = start if start is not None else setup.start_time
        elif args.tower:
            from vigil.detection.objects import CameraGeometry
            from vigil.geo.site import tower_camera

            d = load_deployment(args.deployment)
            towers = {t.id: t for t in d.config.towers}
            if args.tower not in towers:
                print(
                    f"error: --tower {args.tower!r}: not in the deployment; have {sorted(towers)}",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            frame = d.site.frame()
            geometry = CameraGeometry(tower_camera(towers[args.tower], frame), frame, args.tower)
        # --tower-settings: the tower detector alone, as before sensor kinds (no neighbourhood
        # test, no track-before-detect stage); otherwise the sensor kind's defaults
        config = DetectorConfig.for_tower() if args.tower_settings else None
        with EmptyOutputsRemoved(args.out, args.masks):
            summary = run_detect(
                args.input, args.out, geometry, args.masks, config=config,
                sensor=args.sensor, fps=fps, start_time=start,
                announce=lambda line: print(line, file=sys.stderr, flush=True),
            )  # fmt: skip
    except VideoInputError as exc:
        raise CommandError(str(exc)) from None
    except DetectionError as exc:
        raise CommandError(str(exc)) from None
    n_stage = summary.stage_boxes
    stage = f", {n_stage} of them from the slow-mover stage" if n_stage else ""
    print(
        f"{summary.frames} frames, {summary.detections} detections{stage} written to "
        f"{Path(args.out).resolve()}"
        + (f"; {summary.masks_written} masks in {Path(args.masks).resolve()}" if args.masks else "")
        + f"; sensor {summary.sensor}"
        + (f" ({summary.settings.get('sensor_from', '')})" if summary.settings else "")
    )
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``detect`` to the top-level subcommands."""
    p = sub.add_parser(
        "detect",
        help="detect motion in a video file, image sequence or CPTV thermal recording",
        description=(
            "Detect moving objects in a video (any file OpenCV reads, a CPTV thermal recording "
            "*.cptv timed by the camera's own clock, or an image sequence "
            "pattern such as input/in%06d.jpg). With a camera model (--camera-config FILE, "
            "or --tower ID from the deployment) each line of the output is a CameraDetection "
            "with its ground position; without one, a pixel detection. --masks DIR writes each "
            "frame's foreground mask as DIR/%06d.png. The detector's defaults follow the sensor "
            "kind (--sensor; found from the input unless told), named with the settings on "
            "stderr at the start. A corrupt or truncated input stops with "
            "an error naming the frame, after the earlier frames were written."
        ),
    )
    p.add_argument(
        "input", type=input_source, help="video file, .cptv file or image-sequence pattern"
    )
    p.add_argument(
        "--out", required=True, metavar="JSONL", type=output_file, help="detections, one per line"
    )
    p.add_argument("--masks", metavar="DIR", type=output_dir, help="write foreground masks here")
    p.add_argument(
        "--camera-config",
        metavar="FILE",
        type=existing_file,
        help="camera TOML (see detection/video.py)",
    )
    p.add_argument("--tower", metavar="ID", help="use this tower of the deployment as the camera")
    p.add_argument(
        "--deployment", metavar="FILE", type=existing_file, help="deployment TOML for --tower"
    )
    p.add_argument("--fps", type=positive_float, help="frame rate when the input does not say")
    p.add_argument(
        "--start",
        metavar="TIME",
        type=time_arg,
        help="time of the first frame (default: file time)",
    )
    p.add_argument(
        "--sensor",
        choices=SENSOR_CHOICES,
        default="auto",
        help="sensor kind whose defaults to use (default auto: a .cptv file or grey frames are "
        "thermal, colour frames daylight). thermal: tower settings, neighbourhood test and the "
        "slow-mover (track-before-detect) stage; daylight: plain video settings",
    )
    p.add_argument(
        "--tower-settings",
        action="store_true",
        help="the thermal tower detector alone (DetectorConfig.for_tower(): no neighbourhood "
        "test, no slow-mover stage), as before sensor kinds; overrides --sensor",
    )
    p.set_defaults(func=cmd_detect)
