"""Pan-tilt-zoom control of a tower camera over ONVIF, and the pointing the camera reports.

Client
    :class:`OnvifPtz` speaks ONVIF (device, media and PTZ services, WS-Security digest) through
    ``onvif-zeep-async`` (PyPI; maintained with Home Assistant's ONVIF integration). Its
    coroutines run on a private event loop in a thread of their own, so the adapter calls
    plain methods, each bounded by ``timeout_s``: absolute and relative moves, presets (list,
    set, go to), status (``GetStatus``) and the media profile's RTSP address.

Mapping
    ONVIF's generic spaces give pan and tilt in ``[-1, 1]`` and zoom in ``[0, 1]``; what a unit
    means in degrees is the camera's own. :class:`PtzMapping` says it for one camera:

    - pan (azimuth, degrees clockwise from north) ``= pan_zero_deg + x * pan_deg_per_unit``,
      modulo 360 (``pan_deg_per_unit = 180``: the generic space spans the full circle);
    - tilt (degrees below horizontal) ``= tilt_zero_deg - y * tilt_deg_per_unit`` (ONVIF's
      ``y`` grows upward, Vigil's tilt downward);
    - horizontal field of view: the focal length grows linearly with zoom from
      ``hfov_wide_deg`` at 0 to ``hfov_tele_deg`` at 1:
      ``hfov = 2 atan(tan(wide / 2) / (1 + z (M - 1)))`` with
      ``M = tan(wide / 2) / tan(tele / 2)`` (a digital zoom's crop factor does the same).

    A pointing outside the space the mapping covers is clamped to its edge (and logged). A
    reported position outside the generic space (by more than :data:`SPACE_SLACK`) or not a
    number is refused (:class:`PtzError`): the reported pointing stays what it was.

Control
    :class:`~vigil.hardware.ptz_control.PtzControl` runs one thread per camera: it carries
    out the latest pointing order (older ones not yet sent are superseded), polls
    ``GetStatus`` every ``poll_s`` and keeps the reported pointing (its ``reported``), which
    is what the detector's geometry uses. A camera that does not answer is reconnected with
    exponential backoff; once it answers again it is pointed again where it was last told (a
    camera that restarts comes back at its home position).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

_T = TypeVar("_T")


#: How far outside ONVIF's generic space a reported position may be and still be taken
#: (clamped): rounding in a camera's arithmetic; beyond it the status is refused.
SPACE_SLACK = 0.01


class PtzError(OSError):
    """A PTZ camera that cannot be reached, or refused a request."""


@dataclass(frozen=True)
class Pointing:
    """Where a camera looks: azimuth clockwise from north, tilt below horizontal, horizontal
    field of view, all degrees."""

    pan_deg: float
    tilt_deg: float
    hfov_deg: float

    def differs(self, other: Pointing | None, tolerance_deg: float = 0.01) -> bool:
        """Whether ``other`` looks elsewhere by more than ``tolerance_deg`` in any angle."""
        if other is None:
            return True
        dpan = abs((self.pan_deg - other.pan_deg + 180.0) % 360.0 - 180.0)
        return (
            dpan > tolerance_deg
            or abs(self.tilt_deg - other.tilt_deg) > tolerance_deg
            or abs(self.hfov_deg - other.hfov_deg) > tolerance_deg
        )


@dataclass(frozen=True)
class PtzStatus:
    """``GetStatus``: position in ONVIF's generic spaces and whether the head is moving."""

    x: float
    y: float
    zoom: float
    moving: bool = False


@dataclass(frozen=True)
class PtzMapping:
    """One camera's ONVIF generic space in degrees (see the module docstring).

    Parameters
    ----------
    pan_zero_deg, pan_deg_per_unit
        Azimuth at ``x = 0`` and degrees per unit of ``x`` (clockwise from north).
    tilt_zero_deg, tilt_deg_per_unit
        Tilt below horizontal at ``y = 0`` and degrees per unit of ``y`` (``y`` up).
    hfov_wide_deg, hfov_tele_deg
        Horizontal field of view at zoom 0 and at zoom 1.
    """

    pan_zero_deg: float
    pan_deg_per_unit: float = 180.0
    tilt_zero_deg: float = 0.0
    tilt_deg_per_unit: float = 45.0
    hfov_wide_deg: float = 24.0
    hfov_tele_deg: float = 24.0

    def __post_init__(self) -> None:
        checks = {
            "pan_zero_deg": (0.0, 360.0),
            "pan_deg_per_unit": (0.0, 180.0),
            "tilt_zero_deg": (-90.0, 90.0),
            "tilt_deg_per_unit": (0.0, 90.0),
            "hfov_wide_deg": (0.1, 179.0),
            "hfov_tele_deg": (0.1, 179.0),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and lo <= value <= hi):
                raise ValueError(f"PTZ mapping {name} = {value!r}: expected [{lo}, {hi}]")
        if self.pan_deg_per_unit == 0 or self.tilt_deg_per_unit == 0:
            raise ValueError("PTZ mapping: degrees per unit must be above 0")
        if self.hfov_tele_deg > self.hfov_wide_deg:
            raise ValueError(
                f"PTZ mapping hfov_tele_deg = {self.hfov_tele_deg!r}: expected at most "
                f"hfov_wide_deg ({self.hfov_wide_deg!r})"
            )

    def pointing(self, x: float, y: float, zoom: float = 0.0) -> Pointing:
        """The pointing of generic-space ``(x, y, zoom)``."""
        for name, value, lo in (("x", x, -1.0), ("y", y, -1.0), ("zoom", zoom, 0.0)):
            if not (math.isfinite(value) and lo - SPACE_SLACK <= value <= 1.0 + SPACE_SLACK):
                raise PtzError(
                    f"PTZ status {name} = {value!r}: expected a number in ONVIF's generic "
                    f"space [{lo:g}, 1]"
                )
        x, y = min(max(x, -1.0), 1.0), min(max(y, -1.0), 1.0)
        z = min(max(zoom, 0.0), 1.0)
        wide = math.tan(math.radians(self.hfov_wide_deg) / 2.0)
        tele = math.tan(math.radians(self.hfov_tele_deg) / 2.0)
        half = wide / (1.0 + z * (wide / tele - 1.0))
        return Pointing(
            pan_deg=(self.pan_zero_deg + x * self.pan_deg_per_unit) % 360.0,
            tilt_deg=self.tilt_zero_deg - y * self.tilt_deg_per_unit,
            hfov_deg=math.degrees(2.0 * math.atan(half)),
        )

    def position(self, pan_deg: float, tilt_deg: float) -> tuple[float, float]:
        """Generic-space ``(x, y)`` for a pan and tilt, clamped to ``[-1, 1]``."""
        dpan = (pan_deg - self.pan_zero_deg + 180.0) % 360.0 - 180.0  # (-180, 180]
        x = dpan / self.pan_deg_per_unit
        y = (self.tilt_zero_deg - tilt_deg) / self.tilt_deg_per_unit
        cx, cy = min(max(x, -1.0), 1.0), min(max(y, -1.0), 1.0)
        if (cx, cy) != (x, y):
            log.warning(
                "pan %.2f, tilt %.2f is outside the camera's reach; clamped to x %.3f, y %.3f",
                pan_deg,
                tilt_deg,
                cx,
                cy,
            )
        return cx, cy


def _number(obj: Any, *path: str) -> float | None:
    """``obj.a.b`` as a float, ``None`` where a level is missing."""
    for name in path:
        obj = getattr(obj, name, None) if obj is not None else None
    try:
        return float(obj) if obj is not None else None
    except (TypeError, ValueError):
        return None


def _onvif_camera_class() -> Any:
    """``onvif.ONVIFCamera``, imported without the root logging set-up its import does.

    onvif-zeep-async 4.x calls ``logging.basicConfig(level=INFO)`` when imported, which would
    change every program's logging; the root logger's handlers and level are put back.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onvif import ONVIFCamera

    root.handlers[:] = handlers
    root.setLevel(level)
    return ONVIFCamera


class OnvifPtz:
    """An ONVIF camera's PTZ service (and its media profile), called synchronously.

    Parameters
    ----------
    host, port
        The camera's ONVIF device service (``http://host:port/onvif/device_service``).
    user, password
        WS-Security credentials (empty: none).
    profile
        Media profile token; the first profile with a PTZ configuration when omitted.
    timeout_s
        Longest wait for any one request, seconds.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str = "",
        password: str = "",
        *,
        profile: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        if not 0 < int(port) < 65536:
            raise ValueError(f"ONVIF port {port!r}: expected 1-65535")
        self.host = host
        self.port = int(port)
        self.user = user
        self.password = password
        self.profile = profile
        self.timeout_s = float(timeout_s)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"onvif-{host}:{port}", daemon=True
        )
        self._thread.start()
        self._camera: Any = None
        self._ptz: Any = None
        self._media: Any = None

    # -- plumbing -----------------------------------------------------------------------------
    def _run(self, make: Callable[[], Coroutine[Any, Any, _T]], what: str) -> _T:
        fut = asyncio.run_coroutine_threadsafe(asyncio.wait_for(make(), self.timeout_s), self._loop)
        try:
            return fut.result(self.timeout_s + 1.0)
        except Exception as exc:  # the library raises many kinds; all mean the same here
            fut.cancel()
            detail = str(exc) or type(exc).__name__
            raise PtzError(f"ONVIF {what} at {self.host}:{self.port}: {detail[:300]}") from exc

    @property
    def connected(self) -> bool:
        """Whether the services are set up (the camera may have gone since)."""
        return self._ptz is not None

    def connect(self) -> None:
        """Set up the device, media and PTZ services and pick the profile; raises PtzError."""
        ONVIFCamera = _onvif_camera_class()  # noqa: N806 - the library's class

        async def setup() -> None:
            await self._drop()
            cam = ONVIFCamera(self.host, self.port, self.user, self.password)
            try:
                await cam.update_xaddrs()
                media = await cam.create_media_service()
                ptz = await cam.create_ptz_service()
                profiles = await media.GetProfiles()
            except BaseException:
                await cam.close()
                raise
            tokens = [p.token for p in profiles if getattr(p, "PTZConfiguration", None)]
            if self.profile is None:
                if not tokens:
                    await cam.close()
                    raise PtzError("the camera has no media profile with PTZ")
                self.profile = tokens[0]
            self._camera, self._media, self._ptz = cam, media, ptz

        self._run(setup, "connect")

    async def _drop(self) -> None:
        cam, self._camera, self._ptz, self._media = self._camera, None, None, None
        if cam is not None:
            try:
                await cam.close()
            except Exception:  # closing a camera that went away
                log.debug("closing ONVIF session to %s failed", self.host, exc_info=True)

    def _service(self) -> Any:
        if self._ptz is None:
            self.connect()
        return self._ptz

    # -- PTZ ----------------------------------------------------------------------------------
    def absolute_move(self, x: float, y: float, zoom: float | None = None) -> None:
        """Move to generic-space ``(x, y)`` (and ``zoom``)."""
        ptz = self._service()
        position: dict[str, Any] = {"PanTilt": {"x": float(x), "y": float(y)}}
        if zoom is not None:
            position["Zoom"] = {"x": float(zoom)}
        req = {"ProfileToken": self.profile, "Position": position}
        self._run(lambda: ptz.AbsoluteMove(req), "AbsoluteMove")

    def relative_move(self, dx: float, dy: float, dzoom: float = 0.0) -> None:
        """Move by ``(dx, dy, dzoom)`` in the generic spaces."""
        ptz = self._service()
        req = {
            "ProfileToken": self.profile,
            "Translation": {"PanTilt": {"x": float(dx), "y": float(dy)}, "Zoom": {"x": dzoom}},
        }
        self._run(lambda: ptz.RelativeMove(req), "RelativeMove")

    def presets(self) -> dict[str, str]:
        """The camera's presets: token -> name."""
        ptz = self._service()
        got = self._run(lambda: ptz.GetPresets({"ProfileToken": self.profile}), "GetPresets")
        return {str(p.token): str(getattr(p, "Name", "") or "") for p in got or []}

    def set_preset(self, name: str) -> str:
        """Store the present position as a preset named ``name``; returns its token."""
        ptz = self._service()
        req = {"ProfileToken": self.profile, "PresetName": name}
        return str(self._run(lambda: ptz.SetPreset(req), "SetPreset"))

    def goto_preset(self, token: str) -> None:
        """Move to a stored preset."""
        ptz = self._service()
        req = {"ProfileToken": self.profile, "PresetToken": token}
        self._run(lambda: ptz.GotoPreset(req), "GotoPreset")

    def status(self) -> PtzStatus:
        """``GetStatus``: where the head is, in the generic spaces."""
        ptz = self._service()
        got = self._run(lambda: ptz.GetStatus({"ProfileToken": self.profile}), "GetStatus")
        x = _number(got, "Position", "PanTilt", "x")
        y = _number(got, "Position", "PanTilt", "y")
        if x is None or y is None:
            raise PtzError(f"ONVIF GetStatus at {self.host}:{self.port}: no pan/tilt position")
        zoom = _number(got, "Position", "Zoom", "x")
        moving = str(getattr(getattr(got, "MoveStatus", None), "PanTilt", "")).upper()
        return PtzStatus(x, y, 0.0 if zoom is None else zoom, moving == "MOVING")

    def stream_uri(self) -> str:
        """The profile's RTSP address (``GetStreamUri``)."""
        self._service()
        media = self._media
        req = {
            "ProfileToken": self.profile,
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
        }
        got = self._run(lambda: media.GetStreamUri(req), "GetStreamUri")
        return str(got.Uri)

    def reset(self) -> None:
        """Forget the session (the next call connects afresh)."""
        self._run(self._drop, "close")

    def close(self) -> None:
        """Close the session and stop the client's thread."""
        with contextlib.suppress(PtzError):
            self.reset()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)


__all__ = [
    "OnvifPtz",
    "Pointing",
    "PtzError",
    "PtzMapping",
    "PtzStatus",
]
