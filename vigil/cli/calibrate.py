"""``vigil calibrate``: solve a tower camera's pointing from surveyed landmarks; fit the class
tables from labelled tracks (``classes`` and ``simulate``: :mod:`vigil.cli.calibrate_classes`).

``vigil calibrate tower T --landmarks FILE --out FILE`` reads the landmarks
(:func:`vigil.geo.landmarks.read_landmarks`), loads the sector's ground as the deployment's
``[terrain]`` describes it, solves the camera's pan, tilt and roll offsets (and its field of
view with ``--focal``) by least squares (:func:`vigil.geo.landmarks.calibrate_tower`), prints
each landmark's residual in pixels and metres and the offsets with their standard errors, and
adds the tower's entry to the pointing calibration file that ``[terrain] pointing`` names.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from vigil.cli.arguments import add_deployment, existing_file, output_file
from vigil.cli.common import EXIT_OK, CommandError, Subparsers, load_deployment, missing_action

LANDMARKS_HELP = (
    "Landmarks file: CSV, UTF-8, with the header line 'name,u,v,lat,lon,height_m' and one "
    "surveyed point a line: its name (1-64 printable characters), the pixel where the tower's "
    "camera sees it (u from the image's left edge, v down from its top, pixels; continuous, so "
    "the centre of the top-left pixel is 0.5,0.5), its WGS84 latitude and longitude (degrees) "
    "and its height (metres, the DEM's vertical datum; on flat ground, metres above the "
    "ground the towers stand on). At least 2 landmarks (3 with --focal), spread across the "
    "image and in range; at most 1000 rows and 1 MiB. A bad value stops with an error naming "
    "the file, line and column."
)


def cmd_calibrate_tower(args: argparse.Namespace) -> int:
    """Solve one tower's pointing from landmarks and write it to the calibration file."""
    from vigil.geo.dem import FlatGroundWarning, TerrainError, load_terrain
    from vigil.geo.landmarks import calibrate_tower, read_landmarks, write_pointing_file

    d = load_deployment(args.deployment)
    out = args.out
    if out is None:
        if d.config.terrain.pointing is None:
            raise CommandError(
                f"{d.path}: [terrain] names no pointing file; give --out FILE (and name it in "
                "[terrain] pointing so the deployment uses it)"
            )
        out = str(d.resolve(d.config.terrain.pointing))
    try:
        marks = read_landmarks(args.landmarks)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FlatGroundWarning)
            dem = load_terrain(d.config.terrain, d.site, d.path.parent)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        entry, cal = calibrate_tower(d.site, args.tower, marks, dem, solve_focal=args.focal)
        write_pointing_file(out, entry)
    except TerrainError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{out}: cannot write the pointing file ({exc.strerror})") from None
    width = max(8, *(len(n) for n in marks.names))
    print(f"tower {args.tower}: {len(marks.names)} landmarks from {args.landmarks}")
    print(f"{'landmark':<{width}}  {'u':>8}  {'v':>8}  {'resid px':>8}  {'resid m':>8}")
    for k, name in enumerate(marks.names):
        u, v = marks.pixels[k]
        print(
            f"{name:<{width}}  {u:8.2f}  {v:8.2f}  {cal.residual_px[k]:8.2f}  "
            f"{cal.residual_m[k]:8.1f}"
        )
    print(f"rms residual: {entry.rms_px:.2f} px")
    for axis in ("pan", "tilt", "roll"):
        value = getattr(entry, f"{axis}_offset_deg")
        sigma = getattr(entry, f"{axis}_sigma_deg")
        print(f"{axis}_offset_deg = {value:+.4f} +- {sigma:.4f}")
    if args.focal:
        print(f"hfov_deg = {cal.hfov_deg:.4f}")
    print(f"written to {out}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``calibrate`` and its ``tower`` action to the top-level subcommands."""
    p = sub.add_parser(
        "calibrate",
        help="calibrate a tower camera's pointing, or the class tables from labelled tracks",
        description=(
            "Calibrate sensors against surveyed ground truth. 'tower' solves a tower camera's "
            "pan, tilt and roll offsets from landmarks seen in its image; 'classes' fits the "
            "class and speed tables from labelled tracks; 'simulate' records a simulated run "
            "to fit them on."
        ),
    )
    csub = p.add_subparsers(dest="calibrate_command", metavar="ACTION")
    pt = csub.add_parser(
        "tower",
        help="solve a tower camera's pan, tilt and roll offsets from landmarks",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Solve a tower camera's pan, tilt and roll offsets (and its field of view with\n"
            "--focal) by least squares from surveyed landmarks seen in its image, on the\n"
            "sector's ground as the deployment's [terrain] describes it (flat at 0 m without\n"
            "one). Prints each landmark's residual in pixels and on the ground in metres, and\n"
            "the offsets with their standard errors, and adds (or replaces) the tower's entry\n"
            "in the pointing calibration file; name that file in the deployment's [terrain]\n"
            "pointing so the edge places detections with it. Exit status 0 when solved, 3 on\n"
            "bad input (naming file, line and column) or landmarks that do not pin the\n"
            "pointing down.\n\n" + _wrap(LANDMARKS_HELP)
        ),
    )
    pt.add_argument("tower", help="tower id, as in the deployment")
    pt.add_argument(
        "--landmarks", required=True, metavar="FILE", type=existing_file, help="landmarks CSV"
    )
    add_deployment(pt)
    pt.add_argument(
        "--focal", action="store_true", help="also solve the focal length (field of view)"
    )
    pt.add_argument(
        "--out",
        metavar="FILE",
        type=output_file,
        help="pointing calibration TOML to write (default: the deployment's [terrain] pointing)",
    )
    pt.set_defaults(func=cmd_calibrate_tower)
    from vigil.cli.calibrate_classes import register_classes

    register_classes(csub)
    p.set_defaults(func=lambda a: missing_action(p))


def _wrap(text: str, width: int = 88) -> str:
    import textwrap

    return textwrap.fill(text, width)
