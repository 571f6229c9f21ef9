"""``vigil map``: draw a deployment (the situation map) on a map that needs no network."""

from __future__ import annotations

import argparse

from vigil.cli.arguments import add_deployment, output_file
from vigil.cli.common import EXIT_OK, Subparsers, load_deployment


def cmd_map(args: argparse.Namespace) -> int:
    """Draw a deployment on an offline map."""
    from vigil.maps.situation import write_situation_map

    d = load_deployment(args.deployment)
    tiles = args.tiles or d.config.map.tiles_url
    out = write_situation_map(
        d.site,
        args.out,
        tiles_url=tiles,
        tiles_attribution=d.config.map.tiles_attribution,
        basemap=args.basemap == "places",
    )
    print(f"map written to {out.resolve()}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add ``map`` to the top-level subcommands."""
    p = sub.add_parser(
        "map",
        help="draw a deployment on an offline map",
        description=(
            "Draw a sector's border segments, towers with their fields of view, ground sensors, "
            "zones, the aircraft orbit and patrol units on a map that needs no network: "
            "Leaflet is inlined from the package; the basemap (the countries from Natural Earth, "
            "the boundary and GeoNames towns) ships with it. The map has a title, a legend, "
            "the country names on either side of the border, labels by zoom and a popup with "
            "each feature's details on click."
        ),
    )
    add_deployment(p)
    p.add_argument(
        "--out",
        metavar="HTML",
        type=output_file,
        default="map.html",
        help="output (default map.html)",
    )
    p.add_argument(
        "--tiles",
        metavar="URL",
        help="optional local tile server URL, e.g. http://host/{z}/{x}/{y}.png",
    )
    p.add_argument(
        "--basemap",
        choices=("places", "none"),
        default="places",
        help="places: the countries (Natural Earth) and towns (GeoNames) shipped with Vigil "
        "(default); none: the boundary line alone",
    )
    p.set_defaults(func=cmd_map)
