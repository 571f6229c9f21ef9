"""The receive journal and the outbox: de-duplication, resume cursor, order, durability."""

from __future__ import annotations

import sqlite3
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


def _on_disk(path: Path) -> list[tuple[int, float | None]]:
    """``(seq, acked)`` as another connection (a process after a crash) reads the file."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, acked FROM outbox ORDER BY seq").fetchall()
    db.close()
    return rows


def test_outbox_put_many_commits_all_or_none_with_the_held_acknowledgements(
    tmp_path: Path,
) -> None:
    """One transaction for a batch of messages and the acknowledgements waiting: committed
    (another connection sees them) when put_many returns; a batch that fails stores none."""
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    first = box.put_many([("t", b"a"), ("t", b"b"), ("t", b"c")], now=100.0)
    assert first == sorted(first) and len(set(first)) == 3
    assert [s for s, _ in _on_disk(path)] == first
    box.mark_acked(first[0], now=110.0)
    assert _on_disk(path)[0] == (first[0], None)  # held, not yet written
    with pytest.raises(sqlite3.IntegrityError):  # a NULL payload fails the whole batch
        box.put_many([("t", b"d"), ("t", None)], now=120.0)  # type: ignore[list-item]
    assert [s for s, _ in _on_disk(path)] == first and _on_disk(path)[0][1] is None
    more = box.put_many([("t", b"e")], now=130.0)
    assert more[0] > first[-1]
    assert _on_disk(path)[0] == (first[0], 110.0)  # written in the batch's transaction
    box.mark_acked(first[1], now=140.0)
    assert box.unacked() == 2  # a read sees held acknowledgements
    box.mark_acked(first[2], now=150.0)
    box.commit_acks()
    assert [a for _, a in _on_disk(path)] == [110.0, 140.0, 150.0, None]
    box.mark_acked(more[0], now=160.0)
    box.close()  # closing writes what is held
    assert [a for _, a in _on_disk(path)] == [110.0, 140.0, 150.0, 160.0]


def test_outbox_writes_held_acknowledgements_once_enough_wait(tmp_path: Path) -> None:
    from vigil.ingest.outbox import ACKS_HELD

    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    seqs = box.put_many([("t", bytes([i % 256])) for i in range(ACKS_HELD)], now=1.0)
    for s in seqs[:-1]:
        box.mark_acked(s, now=2.0)
    assert all(a is None for _, a in _on_disk(path))
    box.mark_acked(seqs[-1], now=2.0)  # the ACKS_HELD-th: all written in one commit
    assert all(a == 2.0 for _, a in _on_disk(path))
    box.close()
