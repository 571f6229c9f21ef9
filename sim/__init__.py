"""The world simulator: a sector on the real border, every feed its devices make, and the truth.

- :class:`World`: the in-process simulator (feed items in time order, ground truth, commands);
- :class:`SimSettings`: its switches and rates;
- :class:`Perturbations`: what makes it as hard as the field (issue 22), each with a switch
  and a size; ``Perturbations.none()`` (World's default) is the world as before;
- :func:`simulate_to_files`: a whole run written to a folder (videos, ``ugs.jsonl``,
  ``uas.tlog``, ``truth/`` and a manifest).

Truth scoring for evaluation: :mod:`.scoring` (a pipeline's tracks and alerts),
:mod:`.eval_detection` (a motion detector on simulated tower video) and :mod:`.eval_masks`
(foreground masks on CDnet 2014); they take the system's parts as arguments.
"""

import importlib

_WHERE = {
    "read_manifest": "files",
    "simulate_to_files": "files",
    "CrossingTruth": "movers",
    "MoverStates": "movers",
    "SimError": "movers",
    "Perturbations": "perturbations",
    "DEFAULT_START_TIME": "settings",
    "SimSettings": "settings",
    "ObjectTruth": "thermal",
    "decode_mask": "thermal",
    "TelemetryItem": "uas",
    "UasDetection": "uas",
    "UgsMessage": "ugs",
    "read_video": "video",
    "CameraFrame": "world",
    "FeedItem": "world",
    "World": "world",
}


def __getattr__(name: str):
    # Imported on first use, so a video encoder process starts without numba and pymavlink.
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_START_TIME",
    "CameraFrame",
    "CrossingTruth",
    "FeedItem",
    "MoverStates",
    "ObjectTruth",
    "Perturbations",
    "SimError",
    "SimSettings",
    "TelemetryItem",
    "UasDetection",
    "UgsMessage",
    "World",
    "decode_mask",
    "read_manifest",
    "read_video",
    "simulate_to_files",
]
