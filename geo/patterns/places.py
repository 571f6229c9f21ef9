"""Where the areas of an aggregate counts table are, for the report's map.

Only points are known here: the towns that hold each US Border Patrol sector's headquarters
(WGS84, rounded to 0.01°, about a kilometre). They place a sector's counts on the map for
orientation; they are not sector boundaries, and the report says so. Areas not listed have no
place, and the report names them.
"""

from __future__ import annotations

from collections.abc import Iterable

# sector id (as in the USBP table) -> (lat, lon) of its headquarters town, degrees WGS84
USBP_SECTOR_HEADQUARTERS: dict[str, tuple[float, float]] = {
    "big_bend": (30.31, -104.02),  # Marfa, TX
    "blaine": (48.99, -122.75),  # Blaine, WA
    "buffalo": (42.89, -78.88),  # Buffalo, NY
    "del_rio": (29.36, -100.90),  # Del Rio, TX
    "detroit": (42.61, -82.83),  # Selfridge, MI
    "el_centro": (32.79, -115.56),  # El Centro, CA
    "el_paso": (31.76, -106.49),  # El Paso, TX
    "grand_forks": (47.93, -97.03),  # Grand Forks, ND
    "havre": (48.55, -109.68),  # Havre, MT
    "houlton": (46.13, -67.84),  # Houlton, ME
    "laredo": (27.53, -99.49),  # Laredo, TX
    "livermore": (37.68, -121.77),  # Livermore, CA
    "miami": (25.76, -80.19),  # Miami, FL
    "new_orleans": (29.95, -90.07),  # New Orleans, LA
    "ramey": (18.50, -67.13),  # Ramey (Aguadilla), PR
    "rio_grande_valley": (26.30, -98.16),  # Edinburg, TX
    "san_diego": (32.64, -117.08),  # Chula Vista, CA
    "spokane": (47.66, -117.43),  # Spokane, WA
    "swanton": (44.92, -73.12),  # Swanton, VT
    "tucson": (32.22, -110.97),  # Tucson, AZ
    "yuma": (32.69, -114.63),  # Yuma, AZ
}


def area_places(areas: Iterable[str]) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """The known place of each area (lat, lon degrees), and the areas with none."""
    known, unknown = {}, []
    for a in areas:
        key = str(a).strip().lower().replace(" ", "_").replace("-", "_")
        if key in USBP_SECTOR_HEADQUARTERS:
            known[str(a)] = USBP_SECTOR_HEADQUARTERS[key]
        else:
            unknown.append(str(a))
    return known, unknown
