"""The scene methods of ``benchmarks.bench_detection_scenes`` (issue 24): each makes, per
scene, a step from a frame to the foreground mask and boxes in the frame's pixels.

Vigil's detector with given settings, it with the track-before-detect stage, ``vigil
detect``'s defaults as :mod:`vigil.detection.sensor_defaults` builds them (and variants of
them), and OpenCV's MOG2 and KNN with Vigil's post-processing. Fed frames ``1 / FPS`` s
apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from vigil.detection.blobs import BlobFinder
from vigil.detection.calibration import CalibrationParams
from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.objects import ObjectFollower
from vigil.detection.registration import ShakeCompensator
from vigil.detection.sensor_defaults import (
    NoisyCameraParams,
    SensorDetector,
    SensorPlan,
    sensor_plan,
    with_noisy_rule,
)
from vigil.detection.settings import SensorKind
from vigil.detection.tbd import SlowMoverDetector, TbdParams
from vigil.sim.scenes_score import Box, SceneMethod

FPS = 10.0


def _to_frame(
    mask: NDArray[np.uint8], boxes: list[Box], shift: tuple[float, float]
) -> tuple[NDArray[np.uint8], list[Box]]:
    """A registered mask and boxes moved back into the frame's pixels (content moved by shift)."""
    dx, dy = shift
    if abs(dx) < 1e-6 and abs(dy) < 1e-6:
        return mask, boxes
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    h, w = mask.shape
    out = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST)
    return out, [(u0 + dx, v0 + dy, u1 + dx, v1 + dy) for u0, v0, u1, v1 in boxes]


def _pixel_boxes(res: Any) -> tuple[NDArray[np.uint8], list[Box], tuple[float, float]]:
    """A detector result's mask, its pixel boxes and its registration shift."""
    return res.mask, [d.box for d in res.pixel_detections], res.shift_px


def _lazy_method(
    build: Callable[[tuple[int, ...]], Any],
    out: Callable[[Any], tuple[NDArray[np.uint8], list[Box], tuple[float, float]]] = _pixel_boxes,
) -> Callable[[], SceneMethod]:
    """A scene method around a detector ``build(shape)`` makes at the first frame; fed frames
    ``1 / FPS`` s apart, each step gives ``out(result)``'s mask and boxes in the frame's
    pixels."""

    def make() -> SceneMethod:
        det: Any = None
        t = 0

        def step(frame: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], list[Box]]:
            nonlocal det, t
            if det is None:
                det = build(frame.shape)
            t += 1
            return _to_frame(*out(det.process(frame, t / FPS, t)))

        return step

    return make


def vigil_method(config: DetectorConfig) -> Callable[[], SceneMethod]:
    """Vigil's detector with ``config`` as a scene method (fed times 0.1 s apart)."""

    return _lazy_method(lambda shape: MotionDetector(shape, config))


def tbd_method(
    config: DetectorConfig, params: TbdParams | None = None
) -> Callable[[], SceneMethod]:
    """Vigil's detector with ``config`` and the track-before-detect stage after it
    (:class:`vigil.detection.tbd.SlowMoverDetector`): the detector's mask, its boxes the
    stage supports, and the stage's own boxes once a block."""

    return _lazy_method(
        lambda shape: SlowMoverDetector(shape, FPS, config, params),
        lambda res: (res.mask, res.boxes, res.detector.shift_px),
    )


def sensor_method(
    sensor: SensorKind,
    calibrate: bool | None = None,
    cal: CalibrationParams | None = None,
    noisy: NoisyCameraParams | None = None,
) -> Callable[[], SceneMethod]:
    """``vigil detect``'s defaults for a sensor kind, built as the command builds them
    (:func:`vigil.detection.sensor_defaults.sensor_plan`; thermal: the detector's settings
    of ``vigil+n1+tbd``, the slow background on every second frame, and the stage, through
    the same :class:`SensorDetector` wrapper);
    ``calibrate`` turns the start-up calibration on or off (``None``: the default's), ``cal``
    (with ``calibrate``) gives its settings; ``noisy`` puts in the small-box rule of a
    noisy camera with these settings (:func:`~vigil.detection.sensor_defaults.with_noisy_rule`)."""

    def build(shape: tuple[int, ...]) -> SensorDetector:
        plan = sensor_plan(sensor, calibrate=calibrate)
        if calibrate and cal is not None:
            plan = replace(plan, config=replace(plan.config, calibration=cal))
        if noisy is not None:
            plan = with_noisy_rule(plan, noisy)
        return plan.build(shape, FPS)

    return _lazy_method(build)


def reduced(
    spec: str, slow_every: int = 1, config: DetectorConfig | None = None, samples: int = 0
) -> tuple[TbdParams, DetectorConfig | None]:
    """Opt-in reduced-state settings from the command line: ``spec`` is ``KEY=VALUE`` pairs
    of :class:`TbdParams` joined by commas (a tuple's items by ``/``, e.g.
    ``speeds_px_s=0.6,block_s=2,frame_stride=2``); ``slow_every`` is
    ``SlowParams.every`` (0: the detector without its slow background); ``samples`` (0:
    unchanged) the consensus model's ``BackgroundParams.samples``. Returns the stage's
    settings and ``config`` so changed."""
    kw: dict[str, object] = {}
    for item in filter(None, spec.split(",")):
        key, val = item.split("=", 1)
        kind = type(getattr(TbdParams(), key))
        kw[key] = tuple(float(v) for v in val.split("/")) if kind is tuple else kind(val)
    if config is not None and slow_every > 1 and config.slow is not None:
        config = replace(config, slow=replace(config.slow, every=slow_every))
    if config is not None and slow_every == 0:  # no slow background at all
        config = replace(config, slow=None)
    if config is not None and samples > 0:
        config = replace(config, background=replace(config.background, samples=samples))
    return TbdParams(**kw), config


def variant_plan(spec: str) -> SensorPlan:
    """The thermal default with changed settings, ``spec`` as ``KEY=VALUE`` joined by
    ``;``: ``register`` (``DetectorConfig.register_method``), ``samples``
    (``BackgroundParams.samples``), ``slow_every`` (``SlowParams.every``) and any
    :class:`TbdParams` field (a tuple's items joined by ``/``)."""
    kw = dict(item.split("=", 1) for item in filter(None, spec.split(";")))
    kw.pop("guard_px", None)  # variant_method's
    plan = sensor_plan("thermal")
    cfg = plan.config
    if "register" in kw:
        cfg = replace(cfg, register_method=kw.pop("register"))
    tp, cfg2 = reduced(",".join(f"{k}={v}" for k, v in kw.items()
                                if k not in ("samples", "slow_every")),
                       int(kw.get("slow_every", 1)), cfg, int(kw.get("samples", 0)))  # fmt: skip
    return replace(plan, config=cfg2 or cfg, tbd=tp)


def variant_method(spec: str) -> Callable[[], SceneMethod]:
    """:func:`variant_plan` as a scene method (name ``default@SPEC``), built as
    :func:`sensor_method` builds the default; ``guard_px=G`` (with ``register=lk``) gives
    the detector the ``lk`` registration with ECC for shifts over ``G`` pixels
    (``ShakeCompensator.guard_px``; ``"lkg"`` is 0.5)."""
    plan = variant_plan(spec)
    kw = dict(item.split("=", 1) for item in filter(None, spec.split(";")))
    guard = float(kw.get("guard_px", 0.0))

    def build(shape: tuple[int, ...]) -> SensorDetector:
        det = plan.build(shape, FPS)
        if guard > 0:
            reg = ShakeCompensator.made_for(shape, "lk")
            reg.guard_px = guard
            det.detector.registration = reg
        return det

    return _lazy_method(build)


def opencv_method(
    kind: str, config: DetectorConfig, register: bool = False
) -> Callable[[], SceneMethod]:
    """OpenCV's MOG2 or KNN (defaults, shadows off) with Vigil's post-processing in ``config``."""

    def make() -> SceneMethod:
        sub = (
            cv2.createBackgroundSubtractorMOG2(detectShadows=False)
            if kind == "mog2"
            else cv2.createBackgroundSubtractorKNN(detectShadows=False)
        )
        state: dict = {}
        t = 0

        def step(frame: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], list[Box]]:
            nonlocal t
            if not state:
                state["blobs"] = BlobFinder(frame.shape, config.filter_size)
                state["follow"] = ObjectFollower("anchor", config.objects)
                state["reg"] = ShakeCompensator(frame.shape) if register else None
            t += 1
            shift = (0.0, 0.0)
            if state["reg"] is not None:
                frame = state["reg"](frame)
                shift = state["reg"].last_shift
            fg = sub.apply(frame)
            blobs = state["blobs"](fg)
            objs = state["follow"].update(blobs, t / FPS, t)
            boxes = [d.box for d in objs.pixel_detections]
            return _to_frame(state["blobs"].clean, boxes, shift)

        return step

    return make
