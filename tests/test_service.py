"""The sector service's core: the reorder buffer on message time, ticks, late and future
messages, and the replay that skips what a crashed run already published (no broker needed;
the MQTT runs are in tests/test_e2e_mqtt.py)."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import pytest

from vigil.config import load_default
from vigil.hardware.ugs import route
from vigil.ingest.schema import MessageError, SensorEvent, decode, topic_for
from vigil.service import SectorRunner, input_patterns
from vigil.sim import SimSettings, TelemetryItem, UasDetection, UgsMessage, World

NIGHT = SimSettings().start_time + 9 * 3600  # 02:00 in Arizona


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture(scope="module")
def feeds(site):
    return make_feeds(site)


def make_feeds(site) -> list:
    """Four simulated minutes of ground sensors and the aircraft (no tower video): topics and
    messages in the order the devices made them."""
    st = SimSettings(start_time=NIGHT, cameras="off", crossing_rate_scale=40.0)
    out = []
    with World(site, st, seed=5) as world:
        for item in world.run(240.0):
            if isinstance(item, UgsMessage):
                topic, _ = route("tucson", item.payload)
                try:
                    msg = decode(topic, item.payload, now=item.time, max_skew_s=math.inf)
                except MessageError:
                    continue
                out.append((topic, msg))
            elif isinstance(item, TelemetryItem | UasDetection):
                out.append((topic_for("tucson", item.message), item.message))
    return out


@pytest.fixture(scope="module")
def reference(site, feeds) -> SectorRunner:
    """Everything seen before anything is released: the order the others must reproduce."""
    return run(site, feeds)


def run(site, messages, hold_s=math.inf, **kw) -> SectorRunner:
    r = SectorRunner(site, hold_s=hold_s, keep_log=True, **kw)
    for topic, msg in messages:
        r.handle(topic, msg)
    r.finish()
    return r


def outputs(r: SectorRunner) -> list:
    return [(o.topic, o.message) for o in r.log]


def shuffled_by_source(feeds, jitter_s: float, seed: int):
    """Arrival order as over MQTT: each topic keeps its order, sources drift apart by up to
    ``jitter_s`` seconds of message time."""
    rng = random.Random(seed)
    delay = defaultdict(lambda: rng.uniform(0.0, jitter_s))
    keyed = [(msg.time + delay[topic], i, topic, msg) for i, (topic, msg) in enumerate(feeds)]
    keyed.sort()
    return [(topic, msg) for _, _, topic, msg in keyed]


def test_scenario_makes_tracks_and_alerts(reference, feeds):
    r = reference
    kinds = defaultdict(int)
    for o in r.log:
        kinds[o.topic.rsplit("/", 1)[-1]] += 1
    assert kinds["tracks"] > 50 and kinds["alerts"] > 3, dict(kinds)
    assert r.counts["late"] == 0
    # the gateway's skewed clock (+1 h) is caught against the sector's clock, not applied
    assert r.counts["ahead"] > 0
    assert r.counts["released"] + r.counts["ahead"] == len(feeds)


@pytest.mark.parametrize("seed", [1, 2, 3], ids=lambda s: f"arrival{s}")
def test_arrival_order_within_the_hold_does_not_change_outputs(site, feeds, reference, seed):
    want = outputs(reference)
    arrived = shuffled_by_source(feeds, jitter_s=1.5, seed=seed)
    assert arrived != feeds
    r = run(site, arrived, hold_s=2.0)
    assert r.counts["late"] == 0
    assert outputs(r) == want


def test_arrival_beyond_the_hold_is_counted_late(site, feeds):
    arrived = shuffled_by_source(feeds, jitter_s=6.0, seed=4)
    r = run(site, arrived, hold_s=0.5)
    assert r.counts["late"] > 0
    assert r.counts["released"] + r.counts["late"] + r.counts["ahead"] == len(feeds)


def test_a_message_far_ahead_is_handed_on_not_applied(site, feeds, reference):
    topic, msg = next((t, m) for t, m in feeds if isinstance(m, SensorEvent))
    import msgspec

    skewed = msgspec.structs.replace(msg, time=feeds[len(feeds) // 2][1].time + 3600.0)
    rejected = []
    mixed = [*feeds[: len(feeds) // 2], (topic, skewed), *feeds[len(feeds) // 2 :]]
    r = run(site, mixed, hold_s=2.0, on_ahead=lambda t, m, e: rejected.append((m, e.reason)))
    assert (skewed, "time_future") in rejected
    assert r.counts["ahead"] == len(rejected) == reference.counts["ahead"] + 1
    assert outputs(r) == outputs(reference)


@pytest.mark.parametrize("cut", [0.3, 0.7], ids=["early", "late"])
def test_replay_after_a_crash_publishes_exactly_the_rest(site, feeds, reference, cut):
    """A run stopped after some outputs, then a fresh runner over the same input that skips
    what was published: together they publish each output once, in order."""
    want = outputs(reference)
    sent: list = []
    first = SectorRunner(site, lambda t, m: sent.append((t, m)), hold_s=2.0)
    k = int(len(feeds) * cut)
    for topic, msg in feeds[:k]:
        first.handle(topic, msg)
    published = len(sent)
    assert 0 < published < len(want)
    second = SectorRunner(
        site, lambda t, m: sent.append((t, m)), hold_s=2.0, skip_outputs=published
    )
    for topic, msg in feeds:
        second.handle(topic, msg)
    second.finish()
    assert second.counts["skipped"] == published
    assert sent == want


def test_input_patterns_cover_every_input_kind():
    patterns = input_patterns("tucson")
    assert "vigil/v1/tucson/cam/+/detections" in patterns
    assert "vigil/v1/tucson/alerts/actions/+" in patterns
    assert not any(p.endswith(("/tracks", "/alerts", "/crossings")) for p in patterns)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"hold_s": -1.0}, "hold_s"), ({"tick_s": 0.0}, "tick_s")],
    ids=["negative-hold", "zero-tick"],
)
def test_bad_settings_name_the_setting(site, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        SectorRunner(site, **kwargs)
