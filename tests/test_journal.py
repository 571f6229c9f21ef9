"""The receive journal and the outbox: de-duplication, resume cursor, order, durability."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.ingest.journal import ACCEPTED, QUARANTINED, Arrival, Journal, content_key
from vigil.ingest.outbox import Outbox


def arrival(i: int, key: str | None = None, status: str = ACCEPTED) -> Arrival:
    return Arrival(
        key=key or f"dev/e/{i}",
        topic="vigil/v1/tucson/ugs/u1/events",
        payload=f'{{"i":{i}}}'.encode(),
        received=1_790_000_000.0 + i,
        status=status,
        reason=None if status == ACCEPTED else "not_json",
    )


def test_duplicate_keys_are_refused_within_and_across_batches(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    seqs = j.append_many([arrival(1), arrival(2), arrival(1)])
    assert seqs[0] is not None and seqs[1] == seqs[0] + 1 and seqs[2] is None
    assert j.append(arrival(2)) is None
    new = j.append(arrival(3))
    assert new is not None and new > seqs[1]  # numbers only grow (gaps allowed)
    assert j.contains("dev/e/3") and not j.contains("dev/e/4")
    assert len(j) == 3


def test_pending_gives_back_what_was_not_handled_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    j.append_many([arrival(i) for i in range(5)])
    j.append(arrival(99, status=QUARANTINED))
    j.mark_done("svc", 2)
    j.mark_done("svc", 1)  # a cursor never goes back
    j.close()
    j = Journal(path)
    assert [e.payload for e in j.pending("svc")] == [b'{"i":2}', b'{"i":3}', b'{"i":4}']
    assert [e.seq for e in j.pending("other")] == [1, 2, 3, 4, 5]
    assert [e.reason for e in j.replay(status=QUARANTINED)] == ["not_json"]
    assert [e.seq for e in j.replay(1, until_seq=3, batch=1)] == [2, 3]
    assert j.count(ACCEPTED) == 5 and j.count(QUARANTINED) == 1 and j.last_seq == 6
    j.close()


def test_content_key_tells_topics_and_payloads_apart() -> None:
    assert content_key("a/b", b"x") == content_key("a/b", b"x")
    assert content_key("a/b", b"x") != content_key("a/c", b"x")
    assert content_key("a/b", b"x") != content_key("a/b", b"y")


def test_bad_synchronous_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous = 'SOMETIMES'"):
        Journal(tmp_path / "j.sqlite", synchronous="SOMETIMES")


def test_outbox_order_acks_window_and_epoch(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    seqs = [box.put("t", bytes([i]), now=100.0 + i) for i in range(4)]
    assert seqs == sorted(seqs)
    box.mark_acked(seqs[0], now=110.0)
    box.mark_acked(seqs[1], now=120.0)
    assert box.unacked() == 2
    # after a reconnect: unacked ones plus those acked since 115, in order
    assert [e.seq for e in box.to_send(0, acked_since=115.0)] == seqs[1:]
    assert [e.seq for e in box.to_send(seqs[2], acked_since=115.0)] == seqs[3:]
    assert box.prune(acked_before=115.0) == 1
    box.mark_acked(seqs[1], now=200.0)  # resent after a reconnect and acknowledged again
    assert [e.seq for e in box.to_send(0, acked_since=150.0)] == seqs[1:]
    box.remove(seqs[3])
    epoch = box.epoch
    box.close()
    box = Outbox(path)
    assert box.epoch == epoch and len(box) == 2
    assert Outbox(tmp_path / "other.sqlite").epoch != epoch
