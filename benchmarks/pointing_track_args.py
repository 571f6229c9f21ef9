"""Command-line options of ``bench_pointing_track`` (kept apart to keep that file short)."""

from __future__ import annotations

import argparse

import numpy as np

from vigil.geo.crest_placement import CREST_MARGIN, CREST_MODE
from vigil.geo.crossing_monitor import RELIEF_SIDE_HOLD_S, RELIEF_SIDE_PROBABILITY
from vigil.geo.hidden_side import CHAIN_CREST_TOL_PX
from vigil.geo.image_side import (
    IMAGE_CHANGE_PROBABILITY,
    IMAGE_CHANGE_S,
    RELIEF_IMAGE_PROBABILITY,
)
from vigil.tracks.config import RELIEF_TRACKER_CHANGES


def parser(description: str, evaluation_seeds: tuple[int, ...]) -> argparse.ArgumentParser:
    """The benchmark's options (defaults: the relief pipeline's settings, ``evaluation_seeds``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--people", type=int, default=8, help="people per calibration")
    parser.add_argument("--draws", type=int, default=10, help="calibrations per tower and seed")
    parser.add_argument(
        "--seconds",
        type=float,
        default=120.0,
        help="each person's walk, s (a person 1.5-2.5 km out is in a tower's view for minutes)",
    )
    parser.add_argument("--fps", type=float, default=1.0, help="frames a second")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(evaluation_seeds))
    parser.add_argument(
        "--side",
        type=float,
        default=RELIEF_SIDE_PROBABILITY,
        help="the monitor's side_probability (0: positions alone, as before)",
    )
    parser.add_argument("--towers", nargs="+", default=["t02", "t04", "t05", "t06"])
    parser.add_argument(
        "--max-sigma",
        type=float,
        default=RELIEF_TRACKER_CHANGES["max_position_sigma_m"],
        help="the tracker's max_position_sigma_m (default: the relief pipeline's; 200 is "
        "TrackerConfig.for_sector's)",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=RELIEF_SIDE_HOLD_S,
        help="the monitor's side_hold_s, seconds (0: a side as soon as it is sure)",
    )
    parser.add_argument(
        "--speed-sigma",
        type=float,
        default=None,
        help="the tracker's initial_speed_sigma_mps (default: TrackerConfig.for_sector's)",
    )
    parser.add_argument(
        "--shared",
        action="store_true",
        help="add each track's shared pointing covariance to what the monitor is given",
    )
    parser.add_argument(
        "--image",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="judge each track's side in the image too (geo.image_side), given to the monitor "
        "as side_z, as the relief pipeline does (--no-image: positions alone, as before)",
    )
    parser.add_argument(
        "--image-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a track with image margins takes its side from them alone (the pipeline's)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=np.inf,
        help="seconds of image margins pooled per track (default: all, the pipeline's)",
    )
    parser.add_argument(
        "--change-s",
        type=float,
        default=IMAGE_CHANGE_S,
        help="the image evidence's change test window, s (0: no change test)",
    )
    parser.add_argument(
        "--change-p",
        type=float,
        default=IMAGE_CHANGE_PROBABILITY,
        help="the change test's probability",
    )
    parser.add_argument(
        "--image-p",
        type=float,
        default=RELIEF_IMAGE_PROBABILITY,
        help="the monitor's image_probability (the pipeline's by default)",
    )
    parser.add_argument(
        "--sky",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="detections whose feet pixel sees sky (no ground point) give their image margins "
        "to the track they match in the image (geo.unplaced_side); --no-sky: dropped, as before",
    )
    parser.add_argument(
        "--hidden",
        action="store_true",
        help="boxes whose bottom sits on a crest give the side of the top of the body, matched "
        "to the person's tracks in the image and taken where the margins are unsure, as the "
        "chain's HiddenTops (benchmarks/pointing_hidden.py)",
    )
    parser.add_argument(
        "--place-tops",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --hidden: a body whose feet the ground hides is detected as the chain's "
        "detector does (its box placed at its middle's ray, or a sky blob), its margins judged "
        "at that place's pixel; --no-place-tops: not detected (as before)",
    )
    parser.add_argument(
        "--drop-tops",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="with --hidden: boxes on a crest give no feet margin (their bottom may be the "
        "crest's row, not the feet's); the chain keeps them (evaluation 1001-1006, old model: "
        "dropping them left t02 385/386 right, 0.802 of all, against 0.858 before)",
    )
    parser.add_argument(
        "--crest-tol",
        type=float,
        default=CHAIN_CREST_TOL_PX,
        help="with --hidden: how near (rows) a crest must be to a box's bottom (on_crest)",
    )
    parser.add_argument(
        "--crest-place",
        choices=("top", "spread", "off"),
        default=CREST_MODE,
        help="with --hidden: a detection whose box sits on a crest is placed by its top and "
        "bottom rows (top), kept where it was with a covariance spanning those places "
        "(spread), or as the detector placed it (off, as before); default the pipeline's",
    )
    parser.add_argument(
        "--crest-margin",
        choices=("bottom", "place", "sure", "drop"),
        default=CREST_MARGIN,
        help="with --hidden and a --crest-place: the feet margin of a detection whose box sits "
        "on a crest is judged at its box's bottom (bottom), kept there only where the crest's "
        "row cannot turn it (sure), at the detector's place (place, as before) or dropped "
        "(drop); default the pipeline's",
    )
    return parser
