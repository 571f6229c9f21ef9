"""Seeded stream of valid, mutated and random messages on a sector's topics.

For robustness tests and benchmarks of the receiving side: every message it yields must end
up either accepted or quarantined with a reason. The same seed gives the same stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import msgspec

from vigil.ingest.schema import (
    CameraDetection,
    SensorEvent,
    SensorStatus,
    Telemetry,
    Track,
    Wire,
    encode,
    topic_for,
)

_WEIRD_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**63,
    -(2**70),
    1e308,
    -1e308,
    "",
    "x" * 300,
    "\u202e\u0000\ud7ff",
    [],
    [1, 2, 3],
    {},
    {"a": {"b": [None]}},
    -91.0,
    181.0,
    4e9,
    1.0,
    0.5,
]
_MUTATIONS = (
    "valid",
    "random_bytes",
    "truncate",
    "flip_bytes",
    "set_field",
    "drop_field",
    "add_field",
    "wrong_topic",
    "time_future",
    "time_past",
    "not_object",
    "nested",
    "nan_literal",
    "schema_version",
    "splice",
)


def _base_message(rng: random.Random, now: float) -> Wire:
    t = now - rng.uniform(0.0, 60.0)
    lat = 31.3 + rng.uniform(-0.05, 0.05)
    lon = -110.94 + rng.uniform(-0.2, 0.2)
    kind = rng.randrange(5)
    if kind == 0:
        return SensorEvent(
            sensor=f"u{rng.randrange(100, 140)}",
            time=t,
            modality=rng.choice(["seismic", "magnetic", "pir", "acoustic"]),
            strength=rng.uniform(0, 10),
            class_guess=rng.choice(["person", "vehicle", "animal", "unknown"]),
            class_confidence=rng.random(),
            count=rng.randrange(1, 6),
        )
    if kind == 1:
        return SensorStatus(
            sensor=f"u{rng.randrange(100, 140)}", time=t, battery=rng.random(), last_heard=t
        )
    if kind == 2:
        s = rng.uniform(1, 20)
        return CameraDetection(
            camera=f"t{rng.randrange(1, 10):02d}",
            time=t,
            frame=rng.randrange(0, 10**6),
            box=(10.0, 20.0, 30.0, 60.0),
            score=rng.random(),
            lat=lat,
            lon=lon,
            cov=(s, 0.0, 0.0, s),
        )
    if kind == 3:
        return Telemetry(
            aircraft="a1", time=t, lat=lat, lon=lon, alt_m=1500.0, footprint=[(lat, lon)] * 4
        )
    return Track(
        track_id=f"T{rng.randrange(1000)}",
        time=t,
        lat=lat,
        lon=lon,
        vx=rng.uniform(-2, 2),
        vy=rng.uniform(-2, 2),
        cov=(4.0, 0.0, 0.0, 4.0),
        state="confirmed",
    )


def fuzz_messages(sector: str, n: int, *, seed: int, now: float) -> Iterator[tuple[str, bytes]]:
    """``n`` pairs of (topic, payload): about one in eight valid, the rest broken on purpose.

    Parameters
    ----------
    sector
        All topics are ``vigil/v1/{sector}/...``.
    n
        How many messages.
    seed
        The same seed gives the same stream.
    now
        The receiver's "now" (seconds since the epoch); valid messages are up to a minute old.
    """
    rng = random.Random(seed)
    for _ in range(n):
        msg = _base_message(rng, now)
        topic = topic_for(sector, msg)
        raw = encode(msg)
        how = rng.choice(_MUTATIONS)
        yield _mutate(how, rng, sector, topic, raw, now)


def _mutate(
    how: str, rng: random.Random, sector: str, topic: str, raw: bytes, now: float
) -> tuple[str, bytes]:
    if how == "valid":
        return topic, raw
    if how == "random_bytes":
        return topic, rng.randbytes(rng.randrange(0, 200))
    if how == "truncate":
        return topic, raw[: rng.randrange(0, len(raw))]
    if how == "flip_bytes":
        b = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return topic, bytes(b)
    if how == "splice":
        cut = rng.randrange(len(raw))
        return topic, raw[:cut] + rng.randbytes(rng.randrange(1, 20)) + raw[cut:]
    obj = msgspec.json.decode(raw)
    if how == "set_field":
        obj[rng.choice(list(obj))] = rng.choice(_WEIRD_VALUES)
    elif how == "drop_field":
        del obj[rng.choice(list(obj))]
    elif how == "add_field":
        obj[rng.choice(["extra", "Time", "lat ", "__proto__"])] = rng.choice(_WEIRD_VALUES)
    elif how == "wrong_topic":
        topic = rng.choice(
            [
                f"vigil/v1/{sector}/tracks",
                f"vigil/v1/{sector}/ugs/u117/events",
                f"vigil/v1/{sector}/cam/t03/detections",
                f"vigil/v1/{sector}/alerts",
            ]
        )
    elif how == "time_future":
        obj["time"] = now + rng.uniform(400.0, 1e9)
    elif how == "time_past":
        obj["time"] = rng.uniform(-1e9, 9e8)
    elif how == "not_object":
        return topic, msgspec.json.encode(rng.choice([[obj], 1, "text", None, [], 3.5]))
    elif how == "nested":
        depth = rng.randrange(10, 200)
        return topic, b"[" * depth + b"]" * depth
    elif how == "nan_literal":
        key = rng.choice([k for k in obj if isinstance(obj[k], float)] or ["time"])
        marker = '"__nan__"'
        obj[key] = "__nan__"
        text = msgspec.json.encode(obj).decode().replace(marker, rng.choice(["NaN", "1e999"]))
        return topic, text.encode()
    elif how == "schema_version":
        obj["schema"] = rng.choice([0, 2, 99, "1"])
    return topic, msgspec.json.encode(obj)


__all__ = ["fuzz_messages"]
