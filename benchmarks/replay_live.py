"""Record a live run for the replay benchmark: the whole chain, its messages and its scoring.

``record`` runs ``vigil.pipeline.Pipeline`` (simulator, rendered towers, detector, fusion,
crossings, alerts) and keeps every message the sector's core took from outside, with the
pipeline time it arrived at, the alerts it published, and what scoring needs
(:class:`benchmarks.replay_recording.ReplayMeta`).
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.replay_figures import figures
from benchmarks.replay_recording import INPUTS, Footprint, Recording, save
from vigil.geo.site import Site
from vigil.ingest.bus import QuarantinedMessage
from vigil.ingest.recording import RecordedMessage
from vigil.ingest.schema import Alert, encode
from vigil.ingest.topics import topic_matches
from vigil.sim import SimSettings


def record(
    out: str | Path,
    *,
    hours: float,
    seed: int,
    sim: SimSettings,
    site: Site | None = None,
) -> dict:
    """Run the chain live for ``hours`` of simulated time and write the recording to ``out``.

    Parameters
    ----------
    out
        The recording file to write (replaced if it exists).
    hours
        Simulated duration, hours.
    seed
        Simulation seed.
    sim
        Simulator settings; ``sim.start_time`` is the UTC start, seconds since the epoch.
    site
        The deployment's layout (default: the shipped deployment's).

    Returns
    -------
    dict
        The live run's figures (``benchmarks.replay_figures.FIGURES``) and ``wall_s``
        (seconds of wall time the run took).
    """
    import shapely

    from vigil.config import load_default
    from vigil.pipeline import Pipeline

    out = Path(out)
    if not out.parent.is_dir():  # before the run, which may take hours
        raise FileNotFoundError(f"no folder {out.parent} to write the recording {out.name} in")
    site = plain_site(site if site is not None else load_default().site)
    duration = hours * 3600.0
    code = code_version()  # the code the run loads now, not what the checkout holds later
    pipe = Pipeline(site, sim, seed)
    pattern = f"vigil/v1/{pipe.sector}/#"
    stream: list[RecordedMessage] = []
    kept = (*INPUTS, Alert)

    def keep(topic: str, msg) -> None:
        if isinstance(msg, kept):
            stream.append(RecordedMessage.of(pipe.now, topic, encode(msg)))

    def keep_refused(q: QuarantinedMessage) -> None:
        if topic_matches(pattern, q.topic):  # as the core's inputs: a replay refuses them again
            stream.append(RecordedMessage.of(q.time, q.topic, q.raw))

    pipe.bus.subscribe(pattern, keep)
    pipe.bus.on_quarantine(keep_refused)
    wall0 = time.perf_counter()
    try:
        pipe.run(duration)
        summary = pipe.summary(duration)
        truth = pipe.world.crossings(until=sim.start_time + duration + 60.0)
        earlier = pipe.world.crossings_before_start()
        footprints = [Footprint(t, tid, shapely.to_wkb(p)) for t, tid, p in pipe._footprints]
        stitched = pipe.core.fusion.stitched
    finally:
        pipe.close()
    live = {**figures(summary, stitched), "wall_s": round(time.perf_counter() - wall0, 2)}
    rec = Recording(
        made_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        code=code,
        seed=int(seed),
        duration_s=duration,
        sim=sim,
        site=site,
        footprints=footprints,
        truth=truth,
        earlier=earlier,
        live=live,
        summary=summary,
        sector=pipe.sector,
        stream=stream,
    )
    save(rec, out)
    return dict(live)


def plain_site(site: Site) -> Site:
    """The layout alone (a deployment file's site also carries broker and store settings)."""
    return Site(**{f: getattr(site, f) for f in Site.__struct_fields__})


def code_version() -> str:
    """The repository's commit (``+dirty`` with local changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
