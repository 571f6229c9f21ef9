"""The deployment file's tables besides the site: gateways, broker, store, map, the class
model's settings, the service's limits and the cameras' detection overrides (each a frozen
struct with unknown keys refused); :class:`ConfigError`; and the cross-checks of the
stages' tables that types cannot express (``check_*``, run by :func:`vigil.config.check`).

:mod:`vigil.config` loads the file; the stages' own settings (``[tracker]``, ``[alerts]``)
are their structs (:class:`vigil.tracks.config.TrackerSettings`,
:class:`vigil.alerts.rules.AlertRules`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import Meta

from vigil.detection.settings import DetectionSettings
from vigil.geo.site import Ident

if TYPE_CHECKING:
    from vigil.config import Deployment

__all__ = [
    "Broker",
    "ConfigError",
    "CameraSettings",
    "CredentialError",
    "camera_ptz_mapping",
    "ClassSettings",
    "Gateway",
    "MapSettings",
    "OnvifSettings",
    "PtzSettings",
    "ServiceSettings",
    "Store",
]


class ConfigError(ValueError):
    """A deployment file error naming the key, the value and the line."""

    def __init__(
        self, path: str | Path, key: str, value: Any, line: int | None, expected: str
    ) -> None:
        self.path = str(path)
        self.key = key
        self.value = value
        self.line = line
        self.expected = expected
        where = f"{self.path}:{line}" if line else self.path
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{where}: {key} = {shown}: {expected}")


class Broker(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The MQTT broker; credentials come from the environment variables named here."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 1883
    tls: bool = False
    ca_file: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    keepalive_s: Annotated[int, Meta(ge=5, le=3600)] = 30
    #: The sector service's stable client id (its persistent session); ``vigil-{sector}`` when
    #: unset. ``vigil broker init`` makes it the service's user name, bound to the client id.
    client_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$(?!\n)")] | None = None

    def credentials(self) -> tuple[str | None, str | None]:
        """Username and password read from the environment (``None`` where unset)."""
        user = os.environ.get(self.username_env) if self.username_env else None
        password = os.environ.get(self.password_env) if self.password_env else None
        return user, password


class Store(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the sector's SQLite store lives (relative paths are from the deployment file)."""

    path: str = "vigil.sqlite"


class MapSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Map options: an optional local tile server URL template."""

    tiles_url: str | None = None
    tiles_attribution: str = "local tiles"


class Gateway(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ground-sensor gateway and the sensors it speaks for.

    A gateway publishes only for its own sensors (on each sensor's topic or its own,
    ``vigil/v1/{sector}/ugs/{id}/events``); the broker's ACLs and every receiver hold it to
    that. A sensor that no gateway lists speaks for itself only.
    """

    id: Ident
    sensors: Annotated[list[Ident], Meta(min_length=1, max_length=10_000)]


Probability = Annotated[float, Meta(gt=0.0, le=1.0)]


class ClassSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[classes]``: the class model of the sector's tracks.

    Attributes
    ----------
    calibration
        A calibration file (TOML, relative to the deployment file) with the camera confusion
        table and the track-speed table (:class:`vigil.tracks.calibration.ClassModel`), fitted
        to the sector's own cameras and detector; ``vigil:NAME.toml`` names one shipped with
        Vigil (``vigil:sim_towers.toml``: the simulator's towers). Unset: no tables (a
        neutral model: a camera guess counts as right with its confidence, speeds add
        nothing), and a warning.
    prior
        How common person, vehicle and animal are among new tracks before any guess is read
        (the sector's base rates; each in (0, 1]). Default: equal.
    """

    calibration: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None
    prior: tuple[Probability, Probability, Probability] = (1 / 3, 1 / 3, 1 / 3)


class ServiceSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[service]``: the sector service's limits (``vigil run``).

    Attributes
    ----------
    hold_s
        Reorder window: a message is held this long (message time, seconds) for later ones
        that belong before it, then released in time order; later than that it is late.
    tick_s
        How often tracks are published and crossings checked, message seconds.
    idle_s
        Wall seconds without input (while connected) before the clock moves on by itself.
    connect_timeout_s
        How long a start waits for the broker before it says so (and goes on trying), s.
    max_payload_bytes
        Largest message payload decoded, bytes; a larger one is quarantined as ``too_large``.
    journal_synchronous
        SQLite ``synchronous`` of the journal: ``FULL`` (each batch survives a power loss),
        ``NORMAL`` (survives a crash of the process), ``EXTRA`` or ``OFF``.
    snapshot_every, snapshot_s
        A snapshot of the core's state after this many input messages, or this many wall
        seconds when anything changed, whichever comes first (0 turns snapshots off): a
        restart replays only the journal after the newest snapshot.
    snapshot_keep
        Snapshots kept (at least 1); the journal is pruned behind the oldest kept.
    journal_keep
        Journal rows kept behind the snapshots, to recognise a message delivered again.
    """

    hold_s: Annotated[float, Meta(ge=0.0, le=3600.0)] = 1.0
    tick_s: Annotated[float, Meta(gt=0.0, le=60.0)] = 1.0
    idle_s: Annotated[float, Meta(gt=0.0, le=3600.0)] = 3.0
    connect_timeout_s: Annotated[float, Meta(gt=0.0, le=3600.0)] = 30.0
    max_payload_bytes: Annotated[int, Meta(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    journal_synchronous: Literal["FULL", "NORMAL", "EXTRA", "OFF"] = "FULL"
    snapshot_every: Annotated[int, Meta(ge=0, le=100_000_000)] = 5_000
    snapshot_s: Annotated[float, Meta(ge=0.0, le=86_400.0)] = 120.0
    snapshot_keep: Annotated[int, Meta(ge=1, le=100)] = 2
    journal_keep: Annotated[int, Meta(ge=0, le=100_000_000)] = 100_000


EnvName = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$(?!\n)")]
#: Longest password file read, bytes.
MAX_SECRET_BYTES = 4096


class CredentialError(ValueError):
    """A credential that cannot be read; ``key`` is the ``[cameras.onvif]`` key naming it."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class OnvifSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[cameras.onvif]``: where a camera's ONVIF service is and how to log in.

    The password never lives in the deployment file: ``password_env`` names the environment
    variable that holds it, or ``password_file`` a file (relative to the deployment file's
    folder; its first line, at most 4 KiB) that does. The user name may be written
    (``username``) or named the same way (``username_env``). Named nowhere, they come from
    ``VIGIL_ONVIF_USER`` and ``VIGIL_ONVIF_PASSWORD`` as before. ``vigil edge camera``'s
    ``--onvif HOST:PORT`` wins over ``host`` and ``port``.
    """

    host: Annotated[str, Meta(pattern=r"^[A-Za-z0-9.:\[\]_-]{1,253}$(?!\n)")]
    port: Annotated[int, Meta(ge=1, le=65535)] = 80
    username: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    password_file: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None
    #: The ONVIF media profile token; the camera's first when unset.
    profile: Annotated[str, Meta(min_length=1, max_length=64)] | None = None

    def credentials(self, folder: Path) -> tuple[str, str]:
        """``(user, password)`` read from where the settings point (``folder``: the
        deployment file's, for ``password_file``).

        Raises
        ------
        CredentialError
            A named variable that is not set, or a password file that cannot be read, is
            empty or larger than 4 KiB.
        """
        user = self.username
        if user is None:
            name = self.username_env or "VIGIL_ONVIF_USER"
            user = os.environ.get(name)
            if user is None and self.username_env is not None:
                raise CredentialError("username_env", f"environment variable {name} is not set")
        if self.password_file is not None:
            path = Path(self.password_file)
            path = path if path.is_absolute() else folder / path
            try:
                with path.open("rb") as f:
                    data = f.read(MAX_SECRET_BYTES + 1)
            except OSError as exc:
                raise CredentialError(
                    "password_file", f"cannot read {path}: {exc.strerror or exc}"
                ) from None
            if len(data) > MAX_SECRET_BYTES:
                raise CredentialError(
                    "password_file", f"{path} is over {MAX_SECRET_BYTES} bytes; expected a password"
                )
            lines = data.decode("utf-8", errors="replace").splitlines()
            if not lines or not lines[0]:
                raise CredentialError(
                    "password_file", f"{path} is empty; expected the password on its first line"
                )
            password: str | None = lines[0]
        else:
            name = self.password_env or "VIGIL_ONVIF_PASSWORD"
            password = os.environ.get(name)
            if password is None and self.password_env is not None:
                raise CredentialError("password_env", f"environment variable {name} is not set")
        return user or "", password or ""


class PtzSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[cameras.ptz]``: the camera's ONVIF generic space in degrees
    (:class:`vigil.hardware.ptz.PtzMapping`); each ``--ptz-*`` flag of ``vigil edge camera``
    wins over its key.

    Attributes
    ----------
    pan_zero_deg
        Azimuth at ONVIF pan 0, degrees clockwise from north (default: the tower's pan_deg).
    pan_deg_per_unit
        Degrees per unit of ONVIF pan (180: -1..1 is the full circle).
    tilt_zero_deg
        Tilt below horizontal at ONVIF tilt 0, degrees (default: the tower's tilt_deg).
    tilt_deg_per_unit
        Degrees per unit of ONVIF tilt, which grows upward.
    hfov_tele_deg
        Horizontal field of view at full zoom, degrees (default: the tower's hfov_deg).
    """

    pan_zero_deg: Annotated[float, Meta(ge=0.0, le=360.0)] | None = None
    pan_deg_per_unit: Annotated[float, Meta(gt=0.0, le=180.0)] = 180.0
    tilt_zero_deg: Annotated[float, Meta(ge=-90.0, le=90.0)] | None = None
    tilt_deg_per_unit: Annotated[float, Meta(gt=0.0, le=90.0)] = 45.0
    hfov_tele_deg: Annotated[float, Meta(ge=0.1, le=179.0)] | None = None


class CameraSettings(DetectionSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[cameras]]``: one tower camera's detection settings over the file's ``[detection]``,
    and, for a PTZ camera, its ONVIF service (``[cameras.onvif]``) and pointing map
    (``[cameras.ptz]``).

    ``tower`` names a deployed tower; ``onvif`` and ``ptz`` are :class:`OnvifSettings` and
    :class:`PtzSettings`; every other key is a
    :class:`~vigil.detection.settings.DetectionSettings` key, and one left out comes from
    ``[detection]`` (then from the sensor kind's default).
    """

    tower: Ident
    onvif: OnvifSettings | None = None
    ptz: PtzSettings | None = None

    def settings(self) -> DetectionSettings:
        """The override alone, as detection settings (without ``tower``)."""
        return DetectionSettings(
            **{name: getattr(self, name) for name in DetectionSettings.__struct_fields__}
        )


# -- cross-checks of the stages' tables (vigil.config.check runs them) ---------------------


def check_tracker(deployment: Deployment) -> None:
    """``[tracker]``'s rules across keys: m hits out of n, walking below driving speeds."""
    t = deployment.config.tracker
    if t.confirm_m > t.confirm_n:
        raise ConfigError(
            deployment.path,
            "tracker.confirm_m",
            t.confirm_m,
            deployment.line_of("tracker", "confirm_m") or deployment.line_of("tracker"),
            f"more than confirm_n = {t.confirm_n}; expected m <= n (m hits out of n batches)",
        )
    if t.walk_max_mps >= t.vehicle_min_mps:
        raise ConfigError(
            deployment.path,
            "tracker.walk_max_mps",
            t.walk_max_mps,
            deployment.line_of("tracker", "walk_max_mps") or deployment.line_of("tracker"),
            f"not below vehicle_min_mps = {t.vehicle_min_mps}; expected walking speeds below "
            "vehicle speeds",
        )


def check_cameras(deployment: Deployment) -> None:
    """Each ``[[cameras]]`` override names a deployed tower, once."""
    towers = {t.id for t in deployment.config.towers}
    seen: dict[str, int] = {}
    for i, camera in enumerate(deployment.config.cameras):
        line = deployment.line_of("cameras", i, "tower")
        if camera.tower not in towers:
            raise ConfigError(
                deployment.path,
                f"cameras[{i}].tower",
                camera.tower,
                line,
                f"no such tower; expected one of {', '.join(sorted(towers)) or '(none)'}",
            )
        if camera.tower in seen:
            raise ConfigError(
                deployment.path,
                f"cameras[{i}].tower",
                camera.tower,
                line,
                f"already overridden by cameras[{seen[camera.tower]}]; one override a camera",
            )
        seen[camera.tower] = i
        _check_camera_onvif(deployment, i)


def _check_camera_onvif(deployment: Deployment, i: int) -> None:
    """A camera's ``[cameras.onvif]`` and ``[cameras.ptz]``: one source for each credential,
    a pointing map only with ONVIF, and one the tower's field of view allows."""
    camera = deployment.config.cameras[i]
    onvif, ptz = camera.onvif, camera.ptz
    pairs = (("username", "username_env"), ("password_env", "password_file"))
    for a, b in pairs if onvif is not None else ():
        if getattr(onvif, a) is not None and getattr(onvif, b) is not None:
            raise ConfigError(
                deployment.path,
                f"cameras[{i}].onvif.{b}",
                getattr(onvif, b),
                deployment.line_of("cameras", i, "onvif", b),
                f"{a} is set too; expected one of {a} and {b}",
            )
    if ptz is not None and onvif is None:
        raise ConfigError(
            deployment.path,
            f"cameras[{i}].ptz",
            camera.tower,
            deployment.line_of("cameras", i, "ptz"),
            "a pointing map without [cameras.onvif]; expected the camera's ONVIF service",
        )
    if ptz is not None:
        tower = next(t for t in deployment.config.towers if t.id == camera.tower)
        tele = ptz.hfov_tele_deg
        if tele is not None and tele > tower.hfov_deg:
            raise ConfigError(
                deployment.path,
                f"cameras[{i}].ptz.hfov_tele_deg",
                tele,
                deployment.line_of("cameras", i, "ptz", "hfov_tele_deg"),
                f"wider than the tower's hfov_deg ({tower.hfov_deg:g}, at zoom 0); expected "
                "at most that",
            )
        try:
            camera_ptz_mapping(camera, tower.pan_deg, tower.tilt_deg, tower.hfov_deg)
        except ValueError as exc:  # a tower pointing the map cannot take
            raise ConfigError(
                deployment.path,
                f"cameras[{i}].ptz",
                camera.tower,
                deployment.line_of("cameras", i, "ptz"),
                str(exc),
            ) from None


def camera_ptz_mapping(
    camera: CameraSettings | None,
    pan_deg: float,
    tilt_deg: float,
    hfov_deg: float,
    **flags: float | None,
) -> Any:
    """A camera's :class:`vigil.hardware.ptz.PtzMapping`: each ``flags`` value that is not
    None (``pan_zero_deg``, ``pan_deg_per_unit``, ``tilt_zero_deg``, ``tilt_deg_per_unit``,
    ``hfov_tele_deg``: the command line's) over ``[cameras.ptz]``, over the tower's pointing
    (``pan_deg``, ``tilt_deg``, degrees) and field of view (``hfov_deg``: no zoom).

    Raises
    ------
    ValueError
        A mapping out of range.
    """
    from vigil.hardware.ptz import PtzMapping

    ptz = (camera.ptz if camera is not None else None) or PtzSettings()
    chosen = {
        "pan_zero_deg": ptz.pan_zero_deg if ptz.pan_zero_deg is not None else pan_deg,
        "pan_deg_per_unit": ptz.pan_deg_per_unit,
        "tilt_zero_deg": ptz.tilt_zero_deg if ptz.tilt_zero_deg is not None else tilt_deg,
        "tilt_deg_per_unit": ptz.tilt_deg_per_unit,
        "hfov_tele_deg": ptz.hfov_tele_deg if ptz.hfov_tele_deg is not None else hfov_deg,
    }
    unknown = set(flags) - set(chosen)
    if unknown:
        raise TypeError(f"unknown PTZ settings {sorted(unknown)}")
    chosen.update({k: v for k, v in flags.items() if v is not None})
    return PtzMapping(hfov_wide_deg=hfov_deg, **chosen)


def check_files(deployment: Deployment) -> None:
    """Files the file names for what will run (CoT's TLS files when CoT is on, the DEM) exist,
    relative to the deployment file's folder."""
    cfg = deployment.config
    named: list[tuple[str, str, str | None]] = [("terrain", "dem", cfg.terrain.dem)]
    named.append(("terrain", "pointing", cfg.terrain.pointing))
    if cfg.cot.enabled:
        named += [("cot", k, getattr(cfg.cot, k)) for k in ("cert_file", "key_file", "ca_file")]
    for table, key, name in named:
        if name is not None and not deployment.resolve(name).is_file():
            raise ConfigError(
                deployment.path,
                f"{table}.{key}",
                name,
                deployment.line_of(table, key),
                f"no such file ({deployment.resolve(name)}); paths are relative to the "
                "deployment file's folder",
            )
    if cfg.terrain.pointing is not None:  # the pointing calibration file parses, towers known
        from vigil.geo.landmarks import read_pointing_file

        try:
            read_pointing_file(deployment.resolve(cfg.terrain.pointing), {t.id for t in cfg.towers})
        except ValueError as exc:
            line = deployment.line_of("terrain", "pointing")
            raise ConfigError(
                deployment.path, "terrain.pointing", cfg.terrain.pointing, line, str(exc)
            ) from None
