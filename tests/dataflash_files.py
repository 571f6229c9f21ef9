"""ArduPilot DataFlash logs written as the autopilot writes them, for the UAS adapter's tests.

A binary log (``.bin``) is a stream of messages, each ``0xA3 0x95 <type>`` and its fields
packed little-endian; ``FMT`` messages (type 128) first declare every other type's name,
field format and column names. The text form (``.log``) has one message per line,
``NAME, v1, v2, ...``. The formats are ArduPilot 4.x's (``GPS``, ``POS``, ``ATT``), so
pymavlink's ``DFReader`` reads these logs as it reads the autopilot's.
"""

from __future__ import annotations

import struct
from pathlib import Path

#: name: (type id, format, columns), as ArduPilot 4.x logs them
FORMATS = {
    "GPS": (
        130, "QBBIHBcLLeffffB", "TimeUS,I,Status,GMS,GWk,NSats,HDop,Lat,Lng,Alt,Spd,GCrs,VZ,Yaw,U"
    ),
    "ATT": (131, "QccccCCffB", "TimeUS,DesRoll,Roll,DesPitch,Pitch,DesYaw,Yaw,ErrRP,ErrYaw,AEKF"),
    "POS": (132, "QLLfff", "TimeUS,Lat,Lng,Alt,RelHomeAlt,RelOriginAlt"),
}  # fmt: skip
_STRUCT = {"Q": "Q", "B": "B", "I": "I", "H": "H", "c": "h", "C": "H", "L": "i", "e": "i"}
_STRUCT |= {"f": "f", "n": "4s", "N": "16s", "Z": "64s"}
_SCALE = {"c": 100, "C": 100, "e": 100, "L": 10_000_000}
_FMT = (128, "BBnNZ", "Type,Length,Name,Format,Columns")
GPS_EPOCH_UNIX = 315_964_800  # 1980-01-06
LEAP_S = 18  # GPS - UTC, seconds, as pymavlink's DFReader takes it


def gps_week_ms(unix_s: float) -> tuple[int, int]:
    """GPS week and milliseconds into the week of a UTC time (seconds since 1970)."""
    g = unix_s + LEAP_S - GPS_EPOCH_UNIX
    week = int(g // 604_800)
    return week, round((g - week * 604_800) * 1000)


def _pack(fmt: str, values: list) -> bytes:
    out = b""
    for ch, v in zip(fmt, values, strict=True):
        if ch in _SCALE and isinstance(v, float):
            v = round(v * _SCALE[ch])
        if ch in "nNZ":
            v = v.encode() if isinstance(v, str) else v
        out += struct.pack("<" + _STRUCT[ch], v)
    return out


def write_dataflash(path: Path, records: list[tuple[str, list]], *, text: bool = False) -> None:
    """A DataFlash log of ``records`` (``(name, values in FORMATS order)``).

    Scaled fields (``c``, ``e``: hundredths; ``L``: 1e-7 degrees) are given in their units
    (degrees, metres) as floats, or already scaled as ints.
    """
    fmts = {"FMT": _FMT} | FORMATS
    if text:
        lines = []
        for name, (tid, fmt, cols) in fmts.items():
            size = 3 + struct.calcsize("<" + "".join(_STRUCT[c] for c in fmt))
            lines.append(f"FMT, {tid}, {size}, {name}, {fmt}, {cols}")
        for name, values in records:
            lines.append(", ".join([name] + [str(v) for v in values]))
        path.write_text("\n".join(lines) + "\n")
        return
    out = bytearray()
    for name, (tid, fmt, cols) in fmts.items():
        size = 3 + struct.calcsize("<" + "".join(_STRUCT[c] for c in fmt))
        out += b"\xa3\x95\x80" + _pack(_FMT[1], [tid, size, name, fmt, cols])
    for name, values in records:
        tid, fmt, _ = FORMATS[name]
        out += b"\xa3\x95" + bytes([tid]) + _pack(fmt, values)
    path.write_bytes(bytes(out))


def gps(time_us: int, unix_s: float | None, lat: float, lon: float, alt: float, spd: float,
        crs: float, status: int = 3) -> tuple[str, list]:  # fmt: skip
    """A primary ``GPS`` record; ``unix_s`` ``None`` is a receiver without time (week 0)."""
    week, ms = gps_week_ms(unix_s) if unix_s is not None else (0, 0)
    return "GPS", [time_us, 0, status, ms, week, 12, 0.8, lat, lon, alt, spd, crs, 0.0, 0.0, 1]


def att(time_us: int, roll: float, pitch: float, yaw: float) -> tuple[str, list]:
    """An ``ATT`` record, degrees."""
    return "ATT", [time_us, roll, roll, pitch, pitch, yaw, yaw, 0.0, 0.0, 1]


def pos(time_us: int, lat: float, lon: float, alt: float, rel_home: float) -> tuple[str, list]:
    """A ``POS`` record: degrees, metres above mean sea level and above home."""
    return "POS", [time_us, lat, lon, alt, rel_home, rel_home]
