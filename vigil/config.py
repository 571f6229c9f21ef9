"""The deployment file: one TOML file per sector, loaded into typed objects.

Unknown keys, wrong types and out-of-range values are errors that name the key, the value
and the line (:class:`ConfigError`). Secrets never live in the file: the broker section names
the environment variables that hold them.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np
from msgspec import Meta

from vigil.geo.border import US_SIDE, BorderError
from vigil.geo.site import Ident, Site
from vigil.ingest.validation import explain
from vigil.ingest.validation import toml_line as locate

DEFAULT_DEPLOYMENT = "tucson.toml"
#: Devices must be within this distance of the border line to belong to a sector, metres.
MAX_DEVICE_DISTANCE_M = 30_000.0


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
    client_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = None

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


class DeploymentFile(Site, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole file: the site plus the ground-sensor gateways, broker, store and map
    settings."""

    gateways: list[Gateway] = []
    broker: Broker = Broker()
    store: Store = Store()
    map: MapSettings = MapSettings()


@dataclass(frozen=True)
class Deployment:
    """A loaded, checked deployment and where it came from."""

    path: Path
    config: DeploymentFile
    text: str

    @property
    def site(self) -> Site:
        """The physical layout (the file's site part)."""
        return self.config

    @property
    def sector(self) -> str:
        """The sector's name."""
        return self.config.sector.name

    def store_path(self) -> Path:
        """The store's path, resolved against the deployment file's folder."""
        p = Path(self.config.store.path)
        return p if p.is_absolute() else self.path.parent / p

    def line_of(self, *key: str | int) -> int | None:
        """The line in the file where a key path is set (``("towers", 2, "lat")``)."""
        return locate(self.text, list(key))


# -- loading ----------------------------------------------------------------------------------


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
        elif problem.kind == "missing_field":
            expected = "required key is missing"
        else:
            expected = head[0].lower() + head[1:] if head else "invalid value"
        key = problem.key or "(top level)"
        raise ConfigError(path, key, problem.value, problem.line, expected) from None
    deployment = Deployment(Path(path), config, text)
    check(deployment)
    return deployment


def _allowed(table: list[str | int]) -> str:
    import vigil.geo.site as site

    tables: dict[str, type[msgspec.Struct]] = {
        "sector": site.SectorSpec,
        "towers": site.Tower,
        "sensors": site.GroundSensor,
        "aircraft": site.Aircraft,
        "units": site.PatrolUnit,
        "zones": site.Zone,
        "roads": site.Road,
        "corridors": site.Corridor,
        "gateways": Gateway,
        "broker": Broker,
        "store": Store,
        "map": MapSettings,
    }
    names = [p for p in table if isinstance(p, str)]
    tp = tables.get(names[0]) if names else DeploymentFile
    return ", ".join(tp.__struct_fields__) if tp is not None else "(see the documentation)"


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
