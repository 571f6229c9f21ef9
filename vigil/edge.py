"""Wiring for the camera edge process: a tower's motion detector as the adapter's ``detect``.

``vigil.hardware.camera`` reads frames and publishes detections but does not import ``detection``;
this module joins the two with the tower's camera model from the deployment, and turns the
pointing a PTZ camera reports into the detector's geometry (:meth:`TowerDetector.repoint`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from vigil.detection.detector import DetectorConfig, MotionDetector
from vigil.detection.objects import CameraGeometry
from vigil.detection.settings import DetectionSettings
from vigil.detection.terrain import TerrainGeometry
from vigil.geo.camera import PinholeCamera
from vigil.geo.crest_placement import CREST_MODE, CrestMode
from vigil.geo.dem import ElevationModel
from vigil.geo.image_side import SideGeometry
from vigil.geo.landmarks import TowerPointing, apply_pointing
from vigil.geo.site import Site, tower_camera
from vigil.hardware.camera import run_camera_edge
from vigil.hardware.ptz import Pointing, PtzMapping
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import CameraDetection, Wire
from vigil.relief_frame import place_crest_boxes

if TYPE_CHECKING:
    from vigil.config import Deployment


@dataclass(frozen=True)
class TowerGround:
    """What a tower's detector knows of the ground and its own pointing.

    Attributes
    ----------
    dem
        The sector's ground (``[terrain]``): detections are placed where their rays meet it,
        with :class:`~vigil.detection.terrain.TerrainGeometry`. None: flat ground, as before.
    pointing
        The tower's pointing calibration (``[terrain] pointing``): its offsets are added to
        the deployment's (and to what a PTZ camera reports), and its standard errors are the
        pointing error of the detections' covariance on the DEM.
    """

    dem: ElevationModel | None = None
    pointing: TowerPointing | None = None


class TowerDetector:
    """``detect(frame, time_s, index)`` for one tower: its motion detector and camera model.

    The detector is made on the first frame, with the camera model's image size set to the
    frame's (a simulation may render smaller frames than the tower's camera). Its pointing
    is the deployment's until :meth:`repoint` gives the one the camera reports.

    Parameters
    ----------
    site, tower_id
        The deployment and the tower.
    config
        The detector's settings; from ``settings`` (or the tower defaults) when omitted.
    settings
        The tower's detection settings (sensor kind, sensitivity, sizes, masks).
    ground
        The sector's ground and the tower's pointing calibration; None (the default) places
        detections on flat ground with the deployment's pointing, as before terrain.
    crest
        On the ground's DEM, how a person's box whose bottom sits on a crest is placed
        (:func:`vigil.relief_frame.place_crest_boxes`, as ``vigil demo --relief`` places it):
        ``top`` by its top and bottom rows (the default,
        :data:`~vigil.geo.crest_placement.CREST_MODE`), ``spread`` or ``off`` (where the
        detector's ray through its middle meets the crest in front).

    Raises
    ------
    ValueError
        When the deployment has no tower ``tower_id``.
    """

    def __init__(
        self,
        site: Site,
        tower_id: str,
        config: DetectorConfig | None = None,
        *,
        settings: DetectionSettings | None = None,
        ground: TowerGround | None = None,
        crest: CrestMode = CREST_MODE,
    ) -> None:
        towers = {t.id: t for t in site.towers}
        if tower_id not in towers:
            raise ValueError(f"tower {tower_id!r} is not in the deployment; have {sorted(towers)}")
        self.tower_id = tower_id
        self.frame_of_reference = site.frame()
        tower = towers[tower_id]
        self.ground = ground or TowerGround()
        self.crest = crest
        self.base = self._calibrated(tower_camera(tower, self.frame_of_reference))
        self.settings = settings
        if config is None:
            config = (
                settings.detector_config(thermal=tower.thermal)
                if settings is not None
                else DetectorConfig.for_tower()
            )
        self.config = config
        self.detector: MotionDetector | None = None
        #: Pointings given by :meth:`repoint` (the detector restarted for each).
        self.repoints = 0
        self.thermal = tower.thermal
        self._settings: dict[str, Any] | None = None
        self._settings_key: tuple[bool, bool] | None = None

    def detection_settings(self) -> dict[str, Any]:
        """The settings in effect, for the camera's health and log (plain JSON values; see
        :meth:`~vigil.detection.settings.DetectionSettings.effective`), with the start-up
        calibration's choices under ``calibration`` once it is done. The same object until
        they change (the first frame gives the image's size, calibration its levels)."""
        det = self.detector
        calibrated = det is not None and bool(det.calibration_report)
        key = (det is not None, calibrated)
        if self._settings is None or key != self._settings_key:
            shape = det.shape if det is not None else None
            if self.settings is not None:
                out = self.settings.effective(self.thermal, shape)
            else:  # a detector configuration given as such
                out = {
                    "threshold_grey": self.config.background.radius_min,
                    "filter_px": self.config.filter_size,
                    "warmup_frames": self.config.warmup_frames,
                    "calibrate": self.config.calibration is not None,
                }
            if calibrated:
                assert det is not None
                out["calibration"] = dict(det.calibration_report)
            self._settings, self._settings_key = out, key
        return self._settings

    def _calibrated(self, camera: PinholeCamera) -> PinholeCamera:
        """The camera with the tower's pointing calibration applied (if it has one)."""
        cal = self.ground.pointing
        return camera if cal is None else apply_pointing(camera, cal)

    def _geometry(self, w: int, h: int) -> CameraGeometry:
        cam = self.base
        if (cam.width, cam.height) != (w, h):
            cam = replace(cam, width=w, height=h)
        if self.ground.dem is None:
            return CameraGeometry(cam, self.frame_of_reference, self.tower_id)
        cal = self.ground.pointing
        if cal is not None:
            sigmas = (cal.pan_sigma_deg, cal.tilt_sigma_deg, cal.roll_sigma_deg)
        else:  # the tower's specification, as the flat geometry takes it
            spec = self.config.objects.pointing_sigma_deg
            sigmas = (spec, spec, 0.0)
        return TerrainGeometry(
            cam, self.frame_of_reference, self.tower_id, self.ground.dem, pointing_sigma_deg=sigmas
        )

    def repoint(self, pointing: Pointing) -> None:
        """Use the pointing the camera reports (plus the calibration's offsets): new
        geometry, background learnt afresh."""
        reported = replace(
            self.base,
            pan_deg=pointing.pan_deg,
            tilt_deg=pointing.tilt_deg,
            roll_deg=0.0,
            hfov_deg=pointing.hfov_deg,
        )
        cal = self.ground.pointing
        self.base = self._calibrated(reported)
        if cal is not None and cal.hfov_deg is not None:  # the zoom the camera reports
            self.base = replace(self.base, hfov_deg=pointing.hfov_deg)
        self.repoints += 1
        if self.detector is not None:
            h, w = self.detector.shape
            self.detector.set_geometry(self._geometry(w, h))

    def __call__(
        self, frame: NDArray[np.uint8], time_s: float, index: int
    ) -> Sequence[CameraDetection]:
        if self.detector is None:
            h, w = frame.shape[:2]
            roi = self.settings.region((h, w)) if self.settings is not None else None
            self.detector = MotionDetector(
                (h, w), self.config, self._geometry(w, h), roi, camera_id=self.tower_id
            )
        dets = self.detector.process(frame, time_s, index).detections
        geometry = self.detector.geometry
        if dets and self.crest != "off" and isinstance(geometry, TerrainGeometry):
            side = SideGeometry.of(geometry)
            dets, _ = place_crest_boxes(side, self.frame_of_reference, dets, mode=self.crest)
        return dets


def tower_detector(
    site: Site,
    tower_id: str,
    config: DetectorConfig | None = None,
    *,
    settings: DetectionSettings | None = None,
    ground: TowerGround | None = None,
) -> TowerDetector:
    """``detect(frame, time_s, index)`` for one tower (a :class:`TowerDetector`).

    Raises
    ------
    ValueError
        When the deployment has no tower ``tower_id``.
    """
    return TowerDetector(site, tower_id, config, settings=settings, ground=ground)


def tower_ground(deployment: Deployment, tower_id: str) -> TowerGround:
    """The ground and pointing calibration a tower's detector takes from the deployment.

    ``[terrain]`` with a ``dem`` (or ``synthetic`` relief) gives the ground, loaded once
    (:func:`vigil.geo.dem.load_terrain`); ``[terrain] pointing`` gives the tower's calibration
    (none when the file has no entry for it). Without them, flat ground and the deployment's
    pointing, as before terrain.

    Raises
    ------
    vigil.geo.dem.TerrainError
        A DEM or pointing file that cannot be read or placed.
    """
    from vigil.geo.dem import load_terrain
    from vigil.geo.landmarks import read_pointing_file

    terrain = deployment.config.terrain
    dem = None
    if terrain.dem is not None or terrain.synthetic is not None:
        dem = load_terrain(terrain, deployment.site, deployment.path.parent)
    pointing = None
    if terrain.pointing is not None:
        towers = {t.id for t in deployment.site.towers}
        entries = read_pointing_file(deployment.resolve(terrain.pointing), towers)
        pointing = entries.get(tower_id)
        if pointing is None:
            warnings.warn(
                f"{terrain.pointing}: no pointing calibration for tower {tower_id!r}; its "
                "deployment pointing is taken as exact up to its specification",
                UserWarning,
                stacklevel=2,
            )
    return TowerGround(dem, pointing)


def deployment_detector(deployment: Deployment, tower_id: str) -> TowerDetector:
    """The detector ``vigil edge camera`` runs for a tower: its detection settings
    (:meth:`vigil.config.Deployment.detection_for`) and its ground (:func:`tower_ground`)."""
    return tower_detector(
        deployment.site,
        tower_id,
        settings=deployment.detection_for(tower_id),
        ground=tower_ground(deployment, tower_id),
    )


@dataclass(frozen=True)
class OnvifCamera:
    """How ``vigil edge camera`` reaches a tower's ONVIF camera and maps its pointing.

    Attributes
    ----------
    host, port
        The camera's ONVIF service.
    user, password
        Its login (read from the environment or a file, never from the deployment file).
    profile
        The media profile token (None: the camera's first).
    mapping
        Its generic space in degrees (:class:`vigil.hardware.ptz.PtzMapping`).
    """

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    profile: str | None
    mapping: PtzMapping


def onvif_camera(
    deployment: Deployment,
    tower_id: str,
    address: str | None = None,
    **ptz_flags: float | None,
) -> OnvifCamera | None:
    """A tower's ONVIF camera from its ``[[cameras]]`` entry (``[cameras.onvif]``,
    ``[cameras.ptz]``), the command line winning: ``address`` (``HOST:PORT``, ``--onvif``)
    over host and port, each ``ptz_flags`` value that is not None (``--ptz-*``; names as
    :func:`vigil.config_sections.camera_ptz_mapping`) over its key. None when neither the
    entry nor ``address`` names a camera.

    Raises
    ------
    vigil.config.ConfigError
        Credentials that cannot be read (a variable unset, a file missing), naming the key,
        its value and its line; or a pointing map out of range (key ``--ptz-*``).
    """
    from vigil.config import ConfigError
    from vigil.config_sections import CredentialError, camera_ptz_mapping

    index, entry = next(
        ((i, c) for i, c in enumerate(deployment.config.cameras) if c.tower == tower_id),
        (None, None),
    )
    settings = entry.onvif if entry is not None else None
    if address is None and settings is None:
        return None
    if address is not None:
        host, _, number = address.rpartition(":")
        host, port = host or "127.0.0.1", int(number or 80)
    else:
        assert settings is not None
        host, port = settings.host, settings.port
    user, password, profile = (
        os.environ.get("VIGIL_ONVIF_USER", ""),
        os.environ.get("VIGIL_ONVIF_PASSWORD", ""),
        None,
    )
    if settings is not None:
        profile = settings.profile
        try:
            user, password = settings.credentials(deployment.path.parent)
        except CredentialError as exc:
            key = exc.key
            raise ConfigError(
                deployment.path,
                f"cameras[{index}].onvif.{key}",
                getattr(settings, key),
                deployment.line_of("cameras", index, "onvif", key),  # type: ignore[arg-type]
                str(exc),
            ) from None
    tower = next(t for t in deployment.config.towers if t.id == tower_id)
    try:
        mapping = camera_ptz_mapping(
            entry, tower.pan_deg, tower.tilt_deg, tower.hfov_deg, **ptz_flags
        )
    except ValueError as exc:
        raise ConfigError(deployment.path, "--ptz-*", None, None, str(exc)) from None
    return OnvifCamera(host, port, user, password, profile, mapping)


def feeds_from_files(
    site: Site,
    folder: str | Path,
    *,
    towers: Sequence[str] | None = None,
    detection: Callable[[str], DetectionSettings] | None = None,
) -> list[tuple[str, Wire]]:
    """Every valid wire message the edge adapters make from a simulation folder, in process.

    The folder is one written by :func:`vigil.sim.files.simulate_to_files` (or
    ``vigil simulate``): each ``cameras/{tower}.avi`` goes through :func:`run_camera_edge`
    with the tower's detector and the manifest's start time and frame rate, ``ugs.jsonl``
    through :func:`vigil.hardware.ugs.run_ugs_edge` and ``uas.tlog`` through
    :func:`vigil.hardware.uas.run_uas_edge`, each onto an in-process bus that validates them as the
    service's bus would. Returns ``(topic, message)`` per adapter in publishing order
    (cameras, with their statuses carrying the detection settings as ``vigil edge camera``
    sends them, then ground sensors, then the aircraft): the reference that ``vigil edge`` plus
    ``vigil run`` over MQTT is compared with.

    ``detection(tower)`` gives a tower's detection settings, as ``vigil edge camera`` takes
    them from the deployment (:meth:`vigil.config.Deployment.detection_for`); the tower
    defaults when omitted.
    """
    from vigil.hardware.uas import run_uas_edge
    from vigil.hardware.ugs import run_ugs_edge
    from vigil.sim.files import read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    sector = site.sector.name
    bus = InProcessBus(sector)
    got: list[tuple[str, Wire]] = []
    bus.subscribe(f"vigil/v1/{sector}/#", lambda topic, msg: got.append((topic, msg)))
    for tower, video in sorted(manifest["video"].items()):
        if not video.get("file") or (towers is not None and tower not in towers):
            continue
        detect = tower_detector(site, tower, settings=detection(tower) if detection else None)
        run_camera_edge(
            str(folder / video["file"]),
            bus,
            sector,
            tower,
            detect,
            fps=video["fps"],
            start_time=manifest["start_time"],
            detection=detect.detection_settings,
        )
    if (folder / "ugs.jsonl").is_file():
        run_ugs_edge(str(folder / "ugs.jsonl"), bus, sector)
    if (folder / "uas.tlog").is_file() and site.aircraft:
        run_uas_edge(str(folder / "uas.tlog"), bus, sector, site.aircraft[0].id)
    return got


__all__ = [
    "OnvifCamera",
    "TowerDetector",
    "TowerGround",
    "deployment_detector",
    "feeds_from_files",
    "onvif_camera",
    "tower_detector",
    "tower_ground",
]
