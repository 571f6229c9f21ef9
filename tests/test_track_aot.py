"""The tracker's ahead-of-time kernels and ``vigil track``'s output path: the same results as
numba's JIT kernels, the same text as the numpy formatter, the same order as ``np.lexsort``,
and a ``vigil track`` process that loads neither numba nor pandas nor OpenCV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vigil.tracks import aot, imm
from vigil.tracks import kernels as jit
from vigil.tracks import tracker as tracker_module
from vigil.tracks.config import TrackerConfig
from vigil.tracks.csvout import _slow_rows, canonical_order, write_tracks

AOT = aot.kernels()
BUILT = AOT is not jit
needs_aot = pytest.mark.skipif(
    not BUILT, reason="ahead-of-time kernels not built: python -m vigil.tracks.aot (make does)"
)


def _scenario(seed: int, walkers: int = 60, clutter: int = 20, scans: int = 40):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.0, 500.0, (walkers, 2))
    vel = rng.normal(0.0, 1.0, (walkers, 2))
    for k in range(scans):
        p = pos + vel * k + rng.normal(0.0, 2.0, (walkers, 2))
        z = np.vstack([p[rng.random(walkers) < 0.9], rng.uniform(0, 500, (clutter, 2))])
        yield float(k), z, rng.uniform(1.0, 3.0, len(z))


def _run(kernels, config: TrackerConfig, seed: int, monkeypatch) -> list[np.ndarray]:
    monkeypatch.setattr(tracker_module, "kern", kernels)
    monkeypatch.setattr(imm, "kern", kernels)
    tr = imm.make_tracker(config)  # vigil track's defaults: the IMM's kernels too
    out = []
    for t, z, sig in _scenario(seed):
        table = tr.update(t, z, sigma=sig)
        out += [table.track_id, table.status, table.x, table.P]
    return out


@needs_aot
@pytest.mark.parametrize("config", [TrackerConfig.for_track(), TrackerConfig(confirm_m=3)])
def test_aot_kernels_give_the_jit_results_bit_for_bit(config, monkeypatch) -> None:
    a = _run(AOT, config, 7, monkeypatch)
    b = _run(jit, config, 7, monkeypatch)
    assert len(a) == len(b) and sum(len(x) for x in a[::4]) > 100
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def test_a_stale_or_missing_build_falls_back_to_numba(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(aot, "_HASH_FILE", tmp_path / "none.sha256")
    assert aot.kernels() is jit
    (tmp_path / "none.sha256").write_text("0" * 64 + "\n")
    assert aot.kernels() is jit


def test_formatted_rows_match_the_numpy_formatter(tmp_path) -> None:
    rng = np.random.default_rng(3)
    n = 5000
    state = rng.normal(0.0, 1.0, (n, 4)) * 10.0 ** rng.integers(-4, 11, (n, 4))
    state[:50] = np.round(state[:50], 4) + 0.0005  # near ties at the third decimal
    state[50:60] = -1e-9  # rounds to zero: no minus sign
    state[60, :] = [-0.0, 0.0, 9.9995, -9.9995]
    ids = rng.integers(1, 10**12, n)
    batch = np.sort(rng.integers(0, 7, n))
    status = rng.choice(np.array([1, 2], np.int8), n)
    times = [(repr(0.4 * b), f"2026-01-01T00:00:0{b}+00:00") for b in range(7)]
    for digits in (3, 8):
        path = tmp_path / f"t{digits}.csv"
        write_tracks(path, ["h"], ids, state, batch, status, times, digits)
        want = [b"h\n"]
        for b, (t_text, time_text) in enumerate(times):
            rows = batch == b
            big = np.abs(state[rows]).max(axis=0)
            assert (big < 1e12).all()
            want.append(
                _slow_rows(ids[rows], state[rows], status[rows], t_text, time_text, digits, big)
            )
        assert path.read_bytes() == b"".join(want)


def test_huge_values_take_pythons_formatting(tmp_path) -> None:
    state = np.array([[2e13, 1.25, -0.5, 0.0]])
    path = tmp_path / "t.csv"
    write_tracks(path, ["h"], np.array([5]), state, np.array([0]), np.array([1], np.int8),
                 [("1.0", "x")], 3)  # fmt: skip
    assert path.read_text() == "h\n1.0,5,20000000000000.000,1.250,-0.500,0.000,x,confirmed\n"


def test_canonical_order_is_lexsorts() -> None:
    rng = np.random.default_rng(5)
    n = 20000
    t = rng.integers(0, 30, n).astype(float)
    sensor = rng.integers(0, 3, n)
    x = np.round(rng.uniform(0, 50, n), 1)  # many ties in x, broken by y
    y = rng.uniform(0, 50, n)
    assert np.array_equal(canonical_order(t, sensor, x, y), np.lexsort((y, x, sensor, t)))


@needs_aot
def test_vigil_track_process_loads_no_numba_pandas_or_opencv(tmp_path) -> None:
    src, dst = tmp_path / "d.csv", tmp_path / "t.csv"
    rows = [f"{k},{10.0 * i + 1.5 * k:.2f},{5.0 * i:.2f},1.0" for k in range(6) for i in range(3)]
    src.write_text("t,x,y,sigma\n" + "\n".join(rows) + "\n")
    code = (
        "import sys\nfrom vigil.cli import main\n"
        f"rc = main(['track', {str(src)!r}, '--out', {str(dst)!r}])\n"
        "print(rc, sorted(m for m in ('numba', 'pandas', 'cv2', 'scipy', 'pyproj') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
    assert len(Path(dst).read_text().splitlines()) > 3


def test_a_vigil_track_process_ends_at_once_with_its_output_whole(tmp_path) -> None:
    # as its own process (python -m vigil.cli track) vigil track ends without the
    # interpreter's teardown once its output is closed: the same file as main() writes in
    # this process (which must come back here, not exit), its summary line, status 0
    from vigil.cli import main

    src = tmp_path / "d.csv"
    rows = [f"{k},{10.0 * i + 1.5 * k:.2f},{5.0 * i:.2f},1.0" for k in range(8) for i in range(4)]
    src.write_text("t,x,y,sigma\n" + "\n".join(rows) + "\n")
    here, there = tmp_path / "here.csv", tmp_path / "there.csv"
    assert main(["track", str(src), "--out", str(here)]) == 0  # returns: not the process
    out = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "track", str(src), "--out", str(there)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("32 detections in 8 batches -> 4 confirmed tracks")
    assert there.read_bytes() == here.read_bytes() and len(here.read_text().splitlines()) > 20
