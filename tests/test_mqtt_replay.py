"""The publisher's replay window against a real Mosquitto that dies without saving.

A broker that hangs before it dies (a frozen host, a partition followed by a crash) sends no
FIN: the device's connection stays up, and the device notices the fall only when the socket
finally closes (here, when the frozen broker is SIGKILLed; on a real network, after the
keepalive). What the broker acknowledged in its last seconds was never saved; the device must
still send it again, however long the fall took to notice. The window therefore counts back
from the broker's last acknowledgement, not from the moment the device noticed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import SECTOR, Broker, missing_reason, sector_broker
from test_mqtt import EVENTS, device, event, service, wait_for

from vigil.ingest.journal import Journal

pytestmark = pytest.mark.broker


def broker_pids(b: Broker) -> list[int]:
    """Ids of the ``mosquitto`` processes running ``b``'s configuration file."""
    conf = str(b.dir / "mosquitto.conf").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if conf in cmdline.split(b"\0"):
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def unsaved_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that never autosaves, holding the service's session and subscription (saved by
    a clean restart), with the service offline: whatever a device sends is queued for it and
    lost if the broker is killed."""
    if missing_reason():
        pytest.skip(missing_reason())
    b = sector_broker(autosave_interval_s=3600)
    try:
        b.start()
        svc = service(b, tmp_path, Journal(tmp_path / "journal.sqlite"))
        svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: None)
        svc.connect(5)
        svc.close()
        svc.journal.close()
        b.restart()  # a clean stop saves the service's session and subscription
        yield b
    finally:
        b.cleanup()


def assert_service_gets_all(b: Broker, tmp_path: Path, dev: Any, n: int) -> None:
    """A service subscribing now gets messages 0..n-1 of ``dev``'s, in order, each once;
    then the device, the service and its journal are closed."""
    journal = Journal(tmp_path / "journal.sqlite")
    svc = service(b, tmp_path, journal)
    got: list[int] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(int(m.strength)))
    svc.connect(5)
    wait_for(lambda: len(got) >= n, 15)
    assert svc.wait_idle(5)
    assert got == list(range(n)), (len(got), dev.counts, svc.counts)
    dev.close()
    svc.close()
    journal.close()


def test_a_broker_that_hangs_then_dies_unsaved_gets_its_last_acknowledged_messages_again(
    unsaved_broker: Broker, tmp_path: Path
) -> None:
    b = unsaved_broker
    window_s = 1.0
    n = 100
    now = time.time()
    dev = device(b, tmp_path, replay_window_s=window_s).connect(5)
    dev.publish_many([(EVENTS, event(i, now)) for i in range(n)])
    assert dev.flush(10)  # acknowledged by the broker, queued for the offline service
    pids = broker_pids(b)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGSTOP)  # hung: no PUBACK, no FIN; the device stays connected
    try:
        # well past the window: the device goes on keeping (and pruning) its session
        time.sleep(3 * window_s)
        assert dev.counts["disconnected"] == 0, "the device must not notice the hang"
    finally:
        b.kill()  # dies frozen: nothing was saved since the clean restart
    b.start()
    assert wait_for(lambda: dev.connected and dev.counts["connected"] >= 2, 15), dev.counts
    assert dev.flush(10)
    assert_service_gets_all(b, tmp_path, dev, n)


def test_a_device_restarted_after_a_site_power_cut_replays_what_the_dead_broker_acknowledged(
    unsaved_broker: Broker, tmp_path: Path
) -> None:
    """Device and broker go down together (the broker unsaved) and come back later than the
    replay window: the new device process replays, from its outbox, what the broker had
    acknowledged within the window before its last acknowledgement."""
    b = unsaved_broker
    window_s = 1.0
    n = 100
    now = time.time()
    dev = device(b, tmp_path, replay_window_s=window_s).connect(5)
    dev.publish_many([(EVENTS, event(i, now)) for i in range(n)])
    assert dev.flush(10)
    b.kill()
    dev.close()  # the outbox file stays, with the acknowledgements recorded
    time.sleep(2 * window_s)  # the power comes back later than the window
    b.start()
    dev = device(b, tmp_path, replay_window_s=window_s).connect(10)
    assert dev.flush(10)
    assert_service_gets_all(b, tmp_path, dev, n)


@pytest.mark.parametrize("resend", [False, True], ids=["dropped", "sent-again"])
def test_a_broker_killed_before_it_saved_the_service_s_subscription(
    tmp_path: Path, resend: bool
) -> None:
    """What failed once in CI (2,907 of 3,000 handled): the broker was killed before its first
    autosave held the service's session, so the restarted broker had no subscriber when the
    device replayed its window. It accepts the replay with "no matching subscribers" and
    drops it; only ``resend_unrouted`` (on for devices, ``vigil edge``) sends it again once
    the service has resubscribed."""
    if missing_reason():
        pytest.skip(missing_reason())
    b = sector_broker(autosave_interval_s=3600)  # never saves: the restart starts empty
    try:
        b.start()
        n = 200
        now = time.time()
        journal = Journal(tmp_path / "journal.sqlite")
        got: list[int] = []
        svc = service(b, tmp_path, journal)
        svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(int(m.strength)))
        svc.connect(5)
        dev = device(b, tmp_path, resend_unrouted=resend).connect(5)
        dev.publish_many([(EVENTS, event(i, now)) for i in range(n)])
        assert wait_for(lambda: len(got) == n) and svc.wait_idle(5)
        svc.close()  # offline: what follows is queued for its session, in memory only
        dev.publish_many([(EVENTS, event(i, now)) for i in range(n, 2 * n)])
        assert dev.flush(10)
        b.kill()
        b.start()
        # the device replays all 2n before the service is back: nobody takes them
        assert wait_for(lambda: dev.counts["acked_no_subscribers"] >= 2 * n, 15), dev.counts
        svc = service(b, tmp_path, journal)
        svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(int(m.strength)))
        svc.connect(5)
        assert svc.session_present is False
        wait_for(lambda: len(got) >= 2 * n, 15 if resend else 2)
        assert svc.wait_idle(5)
        # each exactly once, not always in order: when the resubscription lands mid-replay,
        # the messages answered "no matching subscribers" just before it are sent again
        # after later ones that were routed (seen 203 before 200 under load)
        assert sorted(got) == list(range(2 * n if resend else n)), (len(got), dev.counts)
        assert got[:n] == list(range(n))
        dev.close()
        svc.close()
        journal.close()
    finally:
        b.cleanup()
