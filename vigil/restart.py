"""How the sector service starts from its state folder and keeps it short to start from.

:class:`Restarts` is the part of :class:`~vigil.service.SectorService` that loads the newest
usable snapshot (:mod:`vigil.snapshot`), trims the stores back to it, replays the journal
after it, and, while running, writes snapshots and prunes the journal behind them. See
:mod:`vigil.service` ("After a crash") for why nothing is lost or sent twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from vigil import snapshot
from vigil.ingest.bus import topic_matches
from vigil.ingest.mqtt_process import wait_for_lock
from vigil.ingest.private_files import private_file
from vigil.ingest.schema import MessageError, decode
from vigil.runner import STATE_FILES, SectorRunner
from vigil.snapshot import SnapshotError
from vigil.store_writer import StoreWriter

log = logging.getLogger("vigil.service")
INF = math.inf


@dataclass
class StartReport:
    """What a start found in its state folder."""

    #: Journaled messages replayed (after the snapshot, when one was loaded).
    replayed: int
    advances: int
    outputs_replayed: int
    outputs_skipped: int
    replay_s: float
    #: The snapshot loaded (``None``: the journal from its start).
    snapshot: str | None = None
    #: The journal position the snapshot covers, and the messages it stands for.
    snapshot_seq: int = 0
    snapshot_handled: int = 0
    #: Snapshots that were found damaged or unusable, with the reason.
    rejected: tuple[str, ...] = ()


def warm_up() -> None:
    """Before going live: load what the core would otherwise import at its first large group
    of tracks (scipy's k-d tree, about 0.5 s in the middle of a tick), and move the objects
    made so far (modules, the site, the replayed state) out of the collector's way (fewer
    objects scanned in each full collection, fewer pages a snapshot's fork copies)."""
    import gc

    import scipy.spatial  # noqa: F401  (tracks.groups imports it lazily)

    gc.collect()
    gc.freeze()


class Restarts:
    """Snapshots and the replay at start, for :class:`~vigil.service.SectorService` (which
    holds the journal, advance log, buses, retained state and settings these use)."""

    #: The snapshot a forked process is writing: its pid, meta and start (monotonic s).
    _snap_child: tuple[int, dict, float] | None = None
    #: A snapshot writer still running after this many wall seconds is killed and counted
    #: failed (a fork that hangs must not stop every later snapshot, nor the service's stop).
    snapshot_writer_timeout_s: float = 120.0
    #: Writes the stores and prunes the journal off the core thread once live (``None``:
    #: everything on the calling thread).
    _stores: StoreWriter | None = None
    #: ``(handled, journal seq)`` of the last message handed over live (``None``: not known).
    _seq_of: tuple[int, int] | None = None
    side_probability: float | None = None
    #: Each tower's geometry for the image side (:meth:`vigil.core.SectorCore.use_image_side`;
    #: empty: none, as on flat ground). Set by ``vigil run`` on relief.
    side_geometries: dict = {}  # noqa: RUF012 (replaced, never mutated)
    #: ``(entry_m, fragments)`` for :meth:`vigil.core.SectorCore.infer_crossings` (the
    #: deployment's ``[crossings] infer``); ``None``: crossings only as seen.
    crossing_inference: tuple | None = None

    def _fingerprint(self, runner: SectorRunner) -> str:
        """What a snapshot's state was built with (settings that shape it)."""
        core = runner.core
        text = repr((self.sector, runner.hold_s, runner.tick_s, runner.max_ahead_s,
                     core.fusion.config, core.engine.rules))  # fmt: skip
        if core.monitor.side_probability is not None:  # unset: fingerprints as before
            text += f"|side_probability={core.monitor.side_probability!r}"
        if self.crossing_inference is not None:  # unset: fingerprints as before
            text += f"|crossing_inference={self.crossing_inference!r}"
        return hashlib.sha256(text.encode()).hexdigest()

    def _new_runner(self, published_before: int) -> SectorRunner:
        runner = self.runner = SectorRunner(
            self.site,
            self._output,
            store_dir=self.store_dir,
            tracker=self.tracker,
            rules=self.rules,
            hold_s=self.hold_s,
            tick_s=self.tick_s,
            skip_outputs=published_before,
            on_ahead=self._ahead,
        )
        runner.core.monitor.side_probability = self.side_probability
        if self.crossing_inference is not None:
            runner.core.infer_crossings(*self.crossing_inference)
        if self.side_geometries:
            runner.core.use_image_side(self.side_geometries)
        self.state.open_alerts.clear()
        self.state.sensors.clear()
        self.state.closed.clear()
        self.state.attach(runner.bus)
        return runner

    def _reset_stores(self) -> None:
        for name in STATE_FILES:
            for suffix in ("", "-wal", "-shm"):
                (self.store_dir / f"{name}{suffix}").unlink(missing_ok=True)
            private_file(self.store_dir / name)  # rebuilt below; 0600 like the journal

    def _load_snapshot(self, published_before: int) -> tuple[SectorRunner, dict | None, list]:
        """A runner with the newest usable snapshot's state (or fresh, with empty stores)."""
        rejected: list[str] = []
        for snap in snapshot.listing(self.state_dir):
            try:
                body = snapshot.read(snap.path)
            except SnapshotError as exc:
                rejected.append(str(exc))
                log.error("snapshot not used: %s", exc)
                continue
            runner = None
            try:
                meta = snapshot.capture_meta(body)
                snapshot.trim_stores(self.store_dir, meta["stores"])
                runner = self._new_runner(published_before)
                if meta["fingerprint"] != self._fingerprint(runner):
                    raise SnapshotError(f"{snap.path}: made with other settings")
                snapshot.restore(self._roots(runner), body)
            except Exception as exc:
                if runner is not None:
                    runner.core.tracks_store.close()
                    runner.core.events.close()
                rejected.append(f"{snap.path}: {exc}")
                log.error("snapshot %s not used: %s", snap.path, exc)
                continue
            return runner, meta, rejected
        if rejected or self.journal.pruned_through:
            log.error(
                "no usable snapshot: replaying the whole journal, which no longer holds "
                "messages 1 to %d (their state is lost)",
                self.journal.pruned_through,
            )
        self._reset_stores()
        return self._new_runner(published_before), None, rejected

    def _roots(self, runner: SectorRunner) -> dict:
        return snapshot.roots(runner, retained=self.state)

    def _replay(self) -> StartReport:
        t0 = time.perf_counter()
        published_before = self.out_bus.outbox.last_seq()
        runner, meta, rejected = self._load_snapshot(published_before)
        after_seq = start_handled = 0
        if meta is not None:
            after_seq, start_handled = meta["seq"], meta["handled"]
            self.handled, self._advance_id = start_handled, meta["advance_id"]
            self._snap = (after_seq, start_handled, self._advance_id)
            self._snap_advances[after_seq] = self._advance_id
            log.info("loaded snapshot of journal message %d (%d handled)", after_seq, self.handled)
        advances = self.advances.since(self._advance_id)
        self._replaying = True
        k = 0

        def catch_up() -> int:  # the advances recorded up to the messages handled so far
            nonlocal k
            while k < len(advances) and advances[k][1] <= self.handled:
                runner.advance_to(advances[k][2])
                self._advance_id = advances[k][0]
                k += 1
            return k

        catch_up()
        last_seq = 0
        for entry in self.journal.replay(after_seq):
            last_seq = entry.seq
            if not any(topic_matches(p, entry.topic) for p in self._patterns):
                continue
            self.handled += 1  # handled live, so counted here too (advances go by the count)
            try:
                msg = decode(entry.topic, entry.payload, now=entry.received, max_skew_s=math.inf)
            except MessageError:
                continue
            runner.handle(entry.topic, msg)
            catch_up()
        for _, _, watermark in advances[k:]:  # advances after the last journaled message
            runner.advance_to(watermark)
        if advances:
            self._advance_id = advances[-1][0]
        self._replaying = False
        self.state.live = True
        self.state.republish()
        if last_seq:
            self.journal.mark_done(self.client_id, last_seq)
        runner.core.flush_stores()
        if runner.outputs < published_before:
            log.warning(
                "the journal replays to %d outputs but the outbox has taken %d: the state "
                "folder's journal and outbox do not belong together",
                runner.outputs,
                published_before,
            )
        return StartReport(
            replayed=self.handled - start_handled,
            advances=len(advances),
            outputs_replayed=runner.outputs,
            outputs_skipped=min(runner.outputs, published_before),
            replay_s=time.perf_counter() - t0,
            snapshot=None if meta is None else str(snapshot.path_for(self.state_dir, after_seq)),
            snapshot_seq=after_seq,
            snapshot_handled=start_handled,
            rejected=tuple(rejected),
        )

    def _drain_outputs(self) -> None:
        """Wait until every output made so far is in the output outbox (the service's writer
        thread commits them)."""

    def _snapshot_meta(self, runner: SectorRunner, defer: bool = False) -> dict | None:
        """What a snapshot of the state as it is now covers (``None``: nothing new, or the
        handled messages are not all in the journal). Flushes the stores. ``defer``: the
        outputs and the stores' rows are left to the store thread, which adds the stores' marks
        once they are written (:meth:`_send_marks`); the meta has no ``"stores"`` yet."""
        seq0, handled0, advance0 = self._snap
        if (self.handled, self._advance_id) == (handled0, advance0):
            return None
        need = self.handled - handled0
        seq = seq0
        known = self._seq_of  # (handled, seq) of the last live message
        if need and known is not None and known[0] == self.handled:
            need, seq = 0, known[1]
        if need:
            for s, topic in self.journal.positions(seq0):
                if any(topic_matches(p, topic) for p in self._patterns):
                    need -= 1
                    seq = s
                    if need == 0:
                        break
        if need:
            log.error("snapshot skipped: %d handled messages not found in the journal", need)
            self.snapshot_counts["failed"] += 1
            return None
        if not defer:
            self._drain_outputs()
        runner.core.flush_stores()
        meta = {
            "seq": seq,
            "handled": self.handled,
            "advance_id": self._advance_id,
            "outputs": runner.outputs,
            "fingerprint": self._fingerprint(runner),
            "wall": time.time(),
        }
        if not defer:
            if self._stores is not None:
                self._stores.drain()  # the marks below cover every row of this state, none later
            meta["stores"] = self._store_marks()
        return meta

    def _store_marks(self) -> dict[str, dict[str, int]]:
        return snapshot.store_marks([self.store_dir / n for n in STATE_FILES])

    def _send_marks(self, fd: int) -> None:
        """(store thread) Once the outputs and the store rows handed over before a deferred
        snapshot's fork are written, the stores' marks to its writer through ``fd`` (closed
        here; closed with nothing written when this fails: the writer then writes nothing)."""
        try:
            self._drain_outputs()
            data = json.dumps({"stores": self._store_marks()}).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def _take_snapshot(self, runner: SectorRunner) -> bool:
        """Snapshot the state (core thread, between messages), then prune behind the oldest
        snapshot kept. Returns whether one was written."""
        self._reap_snapshot(block=True)  # one writer at a time
        meta = self._snapshot_meta(runner)
        if meta is None:
            return False
        try:
            body = snapshot.capture(self._roots(runner), meta)
            snapshot.write(self.state_dir, meta["seq"], body)
        except Exception:  # the journal still holds everything: the service goes on
            log.exception("snapshot of journal message %d failed", meta["seq"])
            self.snapshot_counts["failed"] += 1
            return False
        self._snapshot_written(meta)
        if self._stores is not None:
            self._stores.drain()  # the pruning done
        return True

    def _start_snapshot(self, runner: SectorRunner) -> bool:
        """Start a snapshot of the state as it is now in a forked process (copy-on-write: the
        core goes on at once; :func:`~vigil.snapshot.fork_write`); :meth:`_reap_snapshot`
        finishes it. False when one is still being written or there is nothing new. With the
        store thread writing the core's stores, the core thread does not wait for it, nor for
        the outputs: the child waits for the marks that thread sends once they are written."""
        if self._snap_child is not None:
            return False
        stores = self._stores
        defer = stores is not None and stores.attached
        meta = self._snapshot_meta(runner, defer=defer)
        if meta is None:
            return False
        pipe = os.pipe() if defer else None
        try:
            pid = snapshot.fork_write(
                self.state_dir, meta["seq"], self._roots(runner), meta, more_meta=pipe
            )
        except OSError:
            if pipe is not None:
                for fd in pipe:
                    os.close(fd)
            log.exception("snapshot of journal message %d: no process to write it", meta["seq"])
            self.snapshot_counts["failed"] += 1
            return False
        if pipe is not None and stores is not None:
            stores.call(lambda: self._send_marks(pipe[1]))
        self._snap_child = (pid, meta, time.monotonic())
        return True

    def _reap_snapshot(self, block: bool = False) -> None:
        """Finish a snapshot a forked process was writing once it has exited (or wait for it)."""
        child = self._snap_child
        if child is None:
            return
        pid, meta, started = child
        deadline = started + self.snapshot_writer_timeout_s
        done, status = os.waitpid(pid, os.WNOHANG)
        while done == 0 and block and time.monotonic() < deadline:
            time.sleep(0.02)
            done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            if time.monotonic() < deadline:
                return
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            log.error(
                "snapshot of journal message %d: writer still running after %.0f s, killed",
                meta["seq"],
                self.snapshot_writer_timeout_s,
            )
        self._snap_child = None
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.error("snapshot of journal message %d failed (writer exit %d)", meta["seq"], code)
            self.snapshot_counts["failed"] += 1
            return
        self._snapshot_written(meta)

    def _snapshot_written(self, meta: dict) -> None:
        """A snapshot is on disk: it is the newest; prune behind the oldest kept."""
        seq = meta["seq"]
        self._snap = (seq, meta["handled"], meta["advance_id"])
        self._snap_advances[seq] = meta["advance_id"]
        self.snapshot_counts["written"] += 1
        snapshot.remove_stale(self.state_dir, self.snapshot_keep)
        kept = snapshot.listing(self.state_dir)
        oldest = kept[-1].seq if len(kept) >= self.snapshot_keep else 0
        if oldest:
            if oldest in self._snap_advances:
                self.advances.prune(self._snap_advances[oldest])

            def prune() -> None:  # a slow delete: off the core thread when it can be
                self.snapshot_counts["pruned"] += self.journal.prune(oldest, keep=self.journal_keep)

            if self._stores is not None:
                self._stores.call(prune)
            else:
                prune()
            for s in [s for s in self._snap_advances if s < oldest]:
                del self._snap_advances[s]

    def _input_ended(self, runner: SectorRunner) -> None:
        """The input process died: hand the core what it journaled and did not hand over (its
        acknowledged messages are all in the journal), then start another."""
        code = self.in_bus.exitcode
        self.in_bus.join(5.0)
        self._input_restarts += 1
        log.error("the input process ended (exit status %s): starting another", code)
        time.sleep(min(1.0, 0.1 * self._input_restarts))  # not a tight loop if it keeps dying
        if not wait_for_lock(Path(self.in_bus.spec.lock_path), 30.0):
            log.error("the input process's lock is still held after 30 s")
        for entry in self.journal.replay(self._last_seq):
            self._last_seq = entry.seq
            if not any(topic_matches(p, entry.topic) for p in self._patterns):
                continue
            try:
                msg = decode(entry.topic, entry.payload, now=entry.received, max_skew_s=INF)
            except MessageError:  # counted as handled, as the replay at start counts it
                self.handled += 1
                continue
            self._handle(runner, entry.topic, msg)
        self._last_seq = max(self._last_seq, self.journal.last_seq)
        self._seq_of = (self.handled, self._last_seq)
        self.in_bus.start()

    def _snapshot_due(self, now: float) -> bool:
        n = self.handled - self._snap[1]
        since = now - self._snap_wall
        if self.snapshot_every and n >= self.snapshot_every and since >= self.snapshot_min_s:
            return True
        changed = n > 0 or self._advance_id != self._snap[2]
        return bool(self.snapshot_s) and changed and since >= self.snapshot_s


__all__ = ["Restarts", "StartReport", "warm_up"]
