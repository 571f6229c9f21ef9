"""The class guess of a blob from its size at range, its speed and how many pixels tall it is
(moved here from :mod:`vigil.detection.objects`, which re-exports it)."""

from __future__ import annotations

from vigil.ingest.schema import ClassName


def guess_class(
    height_m: float,
    width_m: float,
    speed_mps: float | None,
    height_px: float,
    sized_by_spread: bool = False,
) -> tuple[ClassName, float]:
    """Guess what a blob is from its size (metres), its ground speed and how many pixels tall.

    Returns the class and a confidence in [0, 1]. Blobs only a few pixels tall have
    unreliable shapes, so their confidence is capped. ``sized_by_spread``: the size comes
    from the blob's weighted spread (a body a pixel or two in size); then its height alone
    separates most animals (under ~0.6 m measured: cattle, deer and coyotes seen far off)
    from people and groups of people (1.2 m and more however wide the group), measured on
    the simulator's towers at night; with four pixels or more of height, animals are the
    wide bodies under 1.55 m and people those taller.
    """
    if speed_mps is not None and speed_mps > 6.0:
        return "vehicle", min(0.9, 0.5 + speed_mps / 40.0)
    aspect = height_m / max(width_m, 1e-3)
    well_resolved = height_px >= 4.0
    if sized_by_spread and height_m < 0.6:
        cls, conf = "animal", 0.55
    elif sized_by_spread and well_resolved and aspect < 1.0 and height_m < 1.55:
        # near enough that heights are good to a decimetre: cattle 1.4 m, deer 1.2 m
        cls, conf = "animal", 0.6
    elif sized_by_spread and height_m >= (1.55 if well_resolved else 1.2) and width_m <= 6.0:
        cls, conf = "person", 0.75
    elif width_m >= 2.6 or height_m * width_m >= 5.0:
        cls, conf = "vehicle", 0.7
    elif aspect >= 1.3 and 0.9 <= height_m <= 2.4:
        cls, conf = "person", 0.7
    elif aspect < 1.0 and height_m < 1.6:
        cls, conf = "animal", 0.6
    elif height_m <= 2.4:
        cls, conf = "person", 0.4
    else:
        return "unknown", 0.0
    # A blob a pixel or two tall has no shape to speak of.
    conf *= min(1.0, max(0.3, height_px / 8.0))
    return cls, round(conf, 3)


__all__ = ["guess_class"]
