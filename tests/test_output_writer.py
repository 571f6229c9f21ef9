"""The output writer: batches sent in order on its own thread, queued ones joined while it is
busy, drain waits for what was handed over, a failing send does not stop it."""

from __future__ import annotations

import threading
import time

from vigil.ingest.output_writer import OutputWriter


def test_batches_go_out_in_order_and_join_while_the_writer_is_busy() -> None:
    sent: list[list] = []
    gate = threading.Event()

    def send(batch: list) -> None:
        gate.wait(5)  # a slow commit: what comes meanwhile must wait and then go together
        sent.append(list(batch))

    w = OutputWriter(send)
    w.put([("a", 1)])
    time.sleep(0.05)  # the writer has taken the first batch and waits in send
    for k in range(2, 6):
        w.put([("a", k)])
    assert w.waiting == 5
    gate.set()
    assert w.drain(5)
    assert w.waiting == 0
    assert [m for b in sent for _, m in b] == [1, 2, 3, 4, 5]
    assert sent[0] == [("a", 1)] and len(sent) == 2  # the four queued went in one call
    assert w.close(5)


def test_drain_waits_for_the_send_and_a_failing_send_does_not_stop_the_writer() -> None:
    sent: list = []

    def send(batch: list) -> None:
        time.sleep(0.05)
        if batch[0][1] == "bad":
            raise OSError("disk full")
        sent.extend(batch)

    w = OutputWriter(send)
    w.put([("t", "bad")])
    assert w.drain(5)
    w.put([("t", "good")])
    assert w.drain(5) and sent == [("t", "good")]  # drain returned after the send, not before
    w.put([])  # nothing to send: no call
    assert w.close(5) and sent == [("t", "good")]


def test_close_sends_what_is_queued_and_refuses_more() -> None:
    sent: list = []
    w = OutputWriter(lambda b: (time.sleep(0.05), sent.extend(b)))
    w.put([("t", 1)])
    w.put([("t", 2)])
    assert w.close(5)
    assert sent == [("t", 1), ("t", 2)]
    try:
        w.put([("t", 3)])
    except RuntimeError:
        pass
    else:
        raise AssertionError("a closed writer took a batch")
