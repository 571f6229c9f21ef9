"""The deployment file: one TOML file per sector, loaded into typed objects.

Besides the site (sector, towers, sensors, aircraft, units, zones, roads, corridors) and the
gateways, broker, store and map, the file carries what a site tunes: ``[tracker]``
(:class:`~vigil.tracks.config.TrackerSettings`), ``[alerts]``
(:class:`~vigil.alerts.rules.AlertRules`), ``[classes]`` (:class:`ClassSettings`: a
calibration file and the prior) and ``[service]`` (:class:`ServiceSettings`). A key left out
takes its documented default; ``vigil config show`` prints every value in force and where it
came from.

Unknown keys, wrong types and out-of-range values are errors that name the key, the value
and the line (:class:`ConfigError`), in the calibration file too. Secrets never live in the
file: the broker section names the environment variables that hold them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from vigil.alerts.cot_settings import CotSettings
from vigil.alerts.rules import AlertRules
from vigil.config_sections import (  # noqa: F401  (ConfigError, sections: re-exported)
    Broker,
    CameraSettings,
    ClassSettings,
    ConfigError,
    Gateway,
    MapSettings,
    ServiceSettings,
    Store,
    check_cameras,
    check_files,
    check_tracker,
)
from vigil.detection.settings import DetectionSettings
from vigil.geo.border import US_SIDE, BorderError
from vigil.geo.crossing_fragments import CrossingSettings
from vigil.geo.dem import TerrainSettings
from vigil.geo.site import Site
from vigil.ingest.validation import explain
from vigil.ingest.validation import toml_line as locate
from vigil.tracks.calibration import (
    NEUTRAL_MODEL,
    SHIPPED_PREFIX,
    CalibrationError,
    ClassModel,
    load_calibration,
    shipped_calibration_path,
)
from vigil.tracks.config import TrackerConfig, TrackerSettings

log = logging.getLogger(__name__)

DEFAULT_DEPLOYMENT = "tucson.toml"
#: Devices must be within this distance of the border line to belong to a sector, metres.
MAX_DEVICE_DISTANCE_M = 30_000.0


class DeploymentFile(Site, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole file: the site plus the ground-sensor gateways, broker, store and map
    settings, and the stages' settings."""

    gateways: list[Gateway] = []
    broker: Broker = Broker()
    store: Store = Store()
    map: MapSettings = MapSettings()
    tracker: TrackerSettings = TrackerSettings()
    alerts: AlertRules = AlertRules()
    classes: ClassSettings = ClassSettings()
    service: ServiceSettings = ServiceSettings()
    cot: CotSettings = CotSettings()
    detection: DetectionSettings = DetectionSettings()
    cameras: list[CameraSettings] = []
    terrain: TerrainSettings = TerrainSettings()
    crossings: CrossingSettings = CrossingSettings()


@dataclass(frozen=True)
class Deployment:
    """A loaded, checked deployment and where it came from."""

    path: Path
    config: DeploymentFile
    text: str
    #: The class tables of ``[classes] calibration`` (neutral when it names none).
    class_model: ClassModel = NEUTRAL_MODEL
    #: What a person should know about the file that is not an error (no calibration, ...).
    warnings: tuple[str, ...] = ()

    @property
    def site(self) -> Site:
        """The physical layout (the file's site part)."""
        return self.config

    @property
    def rules(self) -> AlertRules:
        """The alert rules (``[alerts]``)."""
        return self.config.alerts

    @property
    def service(self) -> ServiceSettings:
        """The sector service's limits (``[service]``)."""
        return self.config.service

    def detection_for(self, tower_id: str) -> DetectionSettings:
        """A camera's detection settings: its ``[[cameras]]`` override laid over
        ``[detection]`` (just ``[detection]`` for a camera the file does not override)."""
        base = self.config.detection
        for camera in self.config.cameras:
            if camera.tower == tower_id:
                return camera.settings().over(base)
        return base

    def resolve(self, name: str) -> Path:
        """A path the file names, resolved against the deployment file's folder."""
        p = Path(name)
        return p if p.is_absolute() else self.path.parent / p

    def calibration_path(self) -> Path | None:
        """The ``[classes]`` calibration file: resolved against the deployment file's folder,
        or one shipped with Vigil for ``vigil:NAME.toml``; raises :class:`ConfigError` for a
        shipped name that is not there."""
        name = self.config.classes.calibration
        if name is None:
            return None
        if name.startswith(SHIPPED_PREFIX):
            try:
                return shipped_calibration_path(name.removeprefix(SHIPPED_PREFIX))
            except CalibrationError as exc:
                line = self.line_of("classes", "calibration")
                raise ConfigError(
                    self.path, "classes.calibration", name, line, exc.expected
                ) from None
        return self.resolve(name)

    def tracker_config(self) -> TrackerConfig:
        """What the tracker runs on: ``[tracker]`` joined with ``[classes]`` (the prior and
        the calibration file's tables)."""
        if self.config.classes.calibration is None:
            log.warning("%s: %s", self.path, NO_CALIBRATION)
        return TrackerConfig.from_parts(
            self.config.tracker,
            self.config.classes.prior,
            self.class_model.camera,
            self.class_model.speed,
        )

    def tracker_config_on_ground(self, relief: bool | None = None) -> TrackerConfig:
        """:meth:`tracker_config`, and on relief the relief's changes
        (:data:`vigil.tracks.config.RELIEF_TRACKER_CHANGES`: detections there can be
        kilometres unsure along the sight line, issue 21) for each key the file's
        ``[tracker]`` does not set itself: what ``vigil run`` and ``vigil demo --relief`` run.
        ``relief``: None: on relief when ``[terrain]`` names a DEM or synthetic ground."""
        from vigil.geo.crossing_monitor import side_probability_for
        from vigil.tracks.config import RELIEF_TRACKER_CHANGES

        tracker = self.tracker_config()
        if relief is None:
            relief = side_probability_for(self.config.terrain) is not None
        if not relief:
            return tracker
        own = tomllib.loads(self.text).get("tracker", {})
        changes = {k: v for k, v in RELIEF_TRACKER_CHANGES.items() if k not in own}
        return msgspec.structs.replace(tracker, **changes) if changes else tracker

    @property
    def sector(self) -> str:
        """The sector's name."""
        return self.config.sector.name

    def store_path(self) -> Path:
        """The store's path, resolved against the deployment file's folder."""
        return self.resolve(self.config.store.path)

    def line_of(self, *key: str | int) -> int | None:
        """The line in the file where a key path is set (``("towers", 2, "lat")``)."""
        return locate(self.text, list(key))


# -- loading ----------------------------------------------------------------------------------


NO_CALIBRATION = (
    "[classes] names no calibration file: tower camera class guesses count as right with "
    "their confidence and track speeds add no class evidence; fit the sector's tables "
    "(vigil.tracks.calibration) and name the file in [classes] calibration"
)


def default_deployment_path() -> Path:
    """Path of the demo deployment shipped with the package."""
    return Path(str(resources.files("vigil").joinpath("data", DEFAULT_DEPLOYMENT)))


def parse(text: str, path: str | Path = "<string>") -> Deployment:
    """Parse and check deployment TOML text; raises :class:`ConfigError`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            path, "(syntax)", None, int(m.group(1)) if m else None, str(exc)
        ) from None
    try:
        config = msgspec.convert(raw, DeploymentFile)
    except msgspec.ValidationError as exc:
        problem = explain(exc, raw, text)
        head = problem.message
        if problem.kind == "unknown_field":
            expected = f"unknown key; allowed here: {_allowed(list(problem.path[:-1]))}"
            if problem.path[0] in ("tracker", "classes") and problem.path[-1] in _CLASS_MODEL:
                expected += f"; {_CLASS_MODEL[str(problem.path[-1])]}"
            if problem.path[0] == "cameras" and problem.path[-1] == "password":
                expected += (
                    "; a password never goes in the file: name the environment variable "
                    "(password_env) or the file (password_file) that holds it"
                )
        elif problem.kind == "missing_field":
            expected = "required key is missing"
        else:
            expected = head[0].lower() + head[1:] if head else "invalid value"
            if "enum value" in head:
                path_keys = [p for p in problem.path if p is not ...]
                expected = f"{expected}; {_choices(path_keys) or 'see the documentation'}"
        key = problem.key or "(top level)"
        raise ConfigError(path, key, problem.value, problem.line, expected) from None
    deployment = Deployment(Path(path), config, text)
    check(deployment)
    return _with_class_model(deployment)


def _with_class_model(deployment: Deployment) -> Deployment:
    """The deployment with its calibration file read (a neutral model and a warning when
    ``[classes]`` names none)."""
    p = deployment.calibration_path()
    if p is None:
        return dataclasses.replace(deployment, warnings=(NO_CALIBRATION,))
    try:
        model = load_calibration(p)
    except CalibrationError as exc:
        if exc.key == "(file)":
            line = deployment.line_of("classes", "calibration")
            raise ConfigError(
                deployment.path, "classes.calibration", str(p), line, exc.expected
            ) from None
        raise ConfigError(exc.path, exc.key, exc.value, exc.line, exc.expected) from None
    return dataclasses.replace(deployment, class_model=model)


_IN_CALIBRATION = "the class tables live in the calibration file that [classes] calibration names"
#: Where a class-model key belongs, for one written in the wrong table.
_CLASS_MODEL = {
    "class_prior": "the prior is [classes] prior",
    "camera_class_model": _IN_CALIBRATION,
    "speed_class_model": _IN_CALIBRATION,
    "camera": _IN_CALIBRATION,
    "speed": _IN_CALIBRATION,
}


def _type_at(path: list[str | int]) -> Any:
    """The type (:mod:`msgspec.inspect`) the file's schema expects at a key path, through
    tables, arrays and optional values; ``None`` when the path leaves the schema."""
    from msgspec import inspect

    tp: Any = inspect.type_info(DeploymentFile)
    for step in path:
        if isinstance(tp, inspect.UnionType):  # an optional table or list: its non-None part
            tp = next((t for t in tp.types if not isinstance(t, inspect.NoneType)), None)
        if isinstance(step, str) and isinstance(tp, inspect.StructType):
            tp = next((f.type for f in tp.fields if f.name == step), None)
        elif isinstance(step, int) and isinstance(tp, inspect.ListType | inspect.VarTupleType):
            tp = tp.item_type
        else:
            return None
    if isinstance(tp, inspect.UnionType):
        tp = next((t for t in tp.types if not isinstance(t, inspect.NoneType)), None)
    return tp


def _allowed(table: list[str | int]) -> str:
    """The keys a table of the file may have."""
    from msgspec import inspect

    tp = _type_at(table)
    if isinstance(tp, inspect.StructType):
        return ", ".join(f.name for f in tp.fields)
    return "(see the documentation)"


def _choices(key: list[str | int]) -> str | None:
    """``expected one of ...`` for a key whose value is one of a fixed set, else ``None``."""
    from msgspec import inspect

    tp = _type_at(key)
    if isinstance(tp, inspect.LiteralType):
        return "expected one of " + ", ".join(repr(v) for v in tp.values)
    return None


def load(path: str | Path) -> Deployment:
    """Load a deployment file; raises :class:`ConfigError` naming the key, value and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(p, "(file)", str(p), None, "no such file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(p, "(file)", str(p), None, f"not UTF-8 text ({exc})") from None
    return parse(text, p)


def load_default() -> Deployment:
    """The demo deployment shipped with the package."""
    return load(default_deployment_path())


def check(deployment: Deployment) -> None:
    """Cross-checks the types cannot express: unique ids, each gateway's sensors deployed and
    bound once, a buildable border, devices on the US side and near the line, a sensible
    stretch."""
    cfg = deployment.config
    path = deployment.path
    text = deployment.text
    seen: dict[str, tuple[str, int]] = {}
    groups = ("towers", "sensors", "aircraft", "units", "zones", "roads", "corridors", "gateways")
    for group in groups:
        for i, item in enumerate(getattr(cfg, group)):
            if item.id in seen:
                g0, i0 = seen[item.id]
                raise ConfigError(
                    path,
                    f"{group}[{i}].id",
                    item.id,
                    locate(text, [group, i, "id"]),
                    f"id already used by {g0}[{i0}]; ids must be unique in a sector",
                )
            seen[item.id] = (group, i)
    _check_gateways(deployment)
    check_cameras(deployment)
    check_tracker(deployment)
    check_files(deployment)
    s = cfg.sector
    _check_timezone(deployment)
    if (s.start is None) != (s.end is None) or (s.start is None) == (s.bbox is None):
        raise ConfigError(
            path, "sector", None, locate(text, ["sector"]), "give start and end, or bbox"
        )
    try:
        frame = cfg.frame()
        border = cfg.border(frame)
    except (BorderError, ValueError) as exc:
        raise ConfigError(path, "sector", s.name, locate(text, ["sector"]), str(exc)) from None
    for group in ("towers", "sensors", "units"):
        items = getattr(cfg, group)
        if not items:
            continue
        lat = np.array([t.lat for t in items])
        lon = np.array([t.lon for t in items])
        x, y = frame.to_local(lat, lon)
        side = border.side(x, y)
        dist = border.distance(x, y)
        for i, item in enumerate(items):
            if side[i] != US_SIDE:
                raise ConfigError(
                    path,
                    f"{group}[{i}]",
                    (item.lat, item.lon),
                    locate(text, [group, i, "lat"]),
                    f"{item.id} is {dist[i]:.0f} m on the far side of the border; "
                    "devices and units must be on the US side",
                )
            if dist[i] > MAX_DEVICE_DISTANCE_M or not math.isfinite(dist[i]):
                raise ConfigError(
                    path,
                    f"{group}[{i}]",
                    (item.lat, item.lon),
                    locate(text, [group, i, "lat"]),
                    f"{item.id} is {dist[i] / 1000:.1f} km from the sector's border; "
                    f"expected within {MAX_DEVICE_DISTANCE_M / 1000:.0f} km",
                )


def _check_gateways(deployment: Deployment) -> None:
    """Each gateway lists deployed sensors, and no sensor is bound to two gateways."""
    cfg, path, text = deployment.config, deployment.path, deployment.text
    sensors = {s.id for s in cfg.sensors}
    bound: dict[str, str] = {}
    for i, gw in enumerate(cfg.gateways):
        for j, sensor in enumerate(gw.sensors):
            key = f"gateways[{i}].sensors[{j}]"
            line = locate(text, ["gateways", i, "sensors"])
            if sensor not in sensors:
                raise ConfigError(
                    path, key, sensor, line, f"gateway {gw.id} lists a sensor the file has not"
                )
            if sensor in bound:
                raise ConfigError(
                    path,
                    key,
                    sensor,
                    line,
                    f"{sensor} is already bound to gateway {bound[sensor]}; "
                    "a sensor belongs to one gateway",
                )
            bound[sensor] = gw.id


def _check_timezone(deployment: Deployment) -> None:
    """``sector.timezone`` must name an IANA time zone: reports and the demo use it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = deployment.config.sector.timezone
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            deployment.path,
            "sector.timezone",
            name,
            locate(deployment.text, ["sector", "timezone"]),
            "unknown time zone; expected an IANA name such as America/Phoenix or UTC",
        ) from None
