"""Everyday mistakes on the command line: each ends with exit status 2 and one line on stderr
that names the argument and the value; no traceback, and nothing written or changed.

Each case runs ``python -m vigil.cli`` as a user would, in a folder holding a file (``afile``),
a folder (``adir``) and a deployment whose time zone does not exist. A read-only place is a
folder under ``/proc``, where nobody (root included) can create a file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

READ_ONLY = "/proc/vigil-test-out"

# (id, argv, words the one line must hold: the argument and the value)
MISTAKES = [
    # --out: an existing file where a folder is meant, a folder where a file is, a read-only place
    ("map-out-folder", ["map", "--out", "adir"], ["--out", "adir"]),
    ("map-out-under-file", ["map", "--out", "afile/map.html"], ["--out", "afile"]),
    ("map-out-read-only", ["map", "--out", f"{READ_ONLY}/map.html"], ["--out", READ_ONLY]),
    ("demo-out-file", ["demo", "--out", "afile"], ["--out", "afile"]),
    ("demo-out-read-only", ["demo", "--out", READ_ONLY], ["--out", READ_ONLY]),
    ("simulate-out-file", ["simulate", "--minutes", "1", "--out", "afile"], ["--out", "afile"]),
    ("simulate-out-read-only", ["simulate", "--minutes", "1", "--out", READ_ONLY], ["--out"]),
    ("detect-out-folder", ["detect", "afile", "--out", "adir"], ["--out", "adir"]),
    ("detect-masks-file", ["detect", "afile", "--out", "d.jsonl", "--masks", "afile"],
     ["--masks", "afile"]),
    ("track-out-folder", ["track", "afile", "--out", "adir"], ["--out", "adir"]),
    ("analyze-out-file", ["analyze", "afile", "--out", "afile"], ["--out", "afile"]),
    ("analyze-out-read-only", ["analyze", "afile", "--out", READ_ONLY], ["--out", READ_ONLY]),
    ("record-out-folder", ["record", "--sector", "tucson", "--out", "adir"], ["--out", "adir"]),
    ("edge-state-dir-file", ["edge", "ugs", "afile", "--state-dir", "afile"],
     ["--state-dir", "afile"]),
    ("run-state-dir-file", ["run", "--state-dir", "afile"], ["--state-dir", "afile"]),
    ("serve-users-folder", ["serve", "--users", "adir"], ["--users", "adir"]),
    # inputs that are not there, or are folders
    ("track-missing", ["track", "missing.csv", "--out", "t.csv"], ["detections", "missing.csv"]),
    ("replay-missing", ["replay", "missing.vrec"], ["file", "missing.vrec"]),
    ("detect-missing", ["detect", "missing.avi", "--out", "d.jsonl"], ["input", "missing.avi"]),
    ("analyze-missing", ["analyze", "missing.csv", "--out", "rep"], ["input", "missing.csv"]),
    ("analyze-counts-missing",
     ["analyze", "counts", "usbp.csv", "--time", "t", "--group", "g", "--value", "v", "--out",
      "rep"], ["input", "usbp.csv"]),
    ("config-check-folder", ["config", "check", "adir"], ["file", "adir"]),
    ("serve-cert-missing", ["serve", "--cert", "missing.pem"], ["--cert", "missing.pem"]),
    ("deployment-missing", ["map", "--deployment", "missing.toml"],
     ["--deployment", "missing.toml"]),
    # values out of range
    ("simulate-minutes", ["simulate", "--minutes", "-1", "--out", "sim"], ["--minutes", "-1"]),
    ("simulate-fps", ["simulate", "--minutes", "1", "--fps", "0", "--out", "sim"],
     ["--fps", "0"]),
    ("simulate-towers", ["simulate", "--minutes", "1", "--towers", "t99", "--out", "sim"],
     ["--towers", "t99"]),
    ("simulate-disk", ["simulate", "--minutes", "100000000", "--out", "sim"],
     ["--out", "sim", "MB"]),
    ("demo-start-word", ["demo", "--start", "yesterday"], ["--start", "yesterday"]),
    ("demo-start-no-zone", ["demo", "--start", "2026-06-01T02:00"],
     ["--start", "2026-06-01T02:00", "zone"]),
    ("demo-rate-scale", ["demo", "--rate-scale", "-5"], ["--rate-scale", "-5"]),
    ("demo-hours", ["demo", "--hours", "0"], ["--hours", "0"]),
    ("demo-speed", ["demo", "--serve", "--speed", "-2"], ["--speed", "-2"]),
    ("demo-serve-no-users", ["demo", "--serve", "--users", "nobody.sqlite"],
     ["nobody.sqlite", "vigil users add"]),
    ("detect-fps", ["detect", "afile", "--out", "d.jsonl", "--fps", "-1"], ["--fps", "-1"]),
    ("detect-start", ["detect", "afile", "--out", "d.jsonl", "--start", "noon"],
     ["--start", "noon"]),
    ("replay-speed", ["replay", "afile", "--speed", "-1"], ["--speed", "-1"]),
    ("edge-broker", ["edge", "ugs", "afile", "--broker", "localhost:mqtt"],
     ["--broker", "localhost:mqtt"]),
    ("edge-speed", ["edge", "ugs", "afile", "--speed", "nan"], ["--speed", "nan"]),
    ("alerts-broker-port", ["alerts", "--unit", "p03", "--broker", "127.0.0.1:70000"],
     ["--broker", "70000"]),
    ("serve-port", ["serve", "--port", "0"], ["--port", "0"]),
    ("analyze-month", ["analyze", "afile", "--out", "rep", "--year-start-month", "13"],
     ["--year-start-month", "13"]),
    ("record-seconds", ["record", "--sector", "tucson", "--out", "r.vrec", "--seconds", "-3"],
     ["--seconds", "-3"]),
]  # fmt: skip


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder, name)
            st = p.stat()
            found[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("not what any command wants\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "keep.txt").write_text("keep\n")
    return tmp_path


def vigil(cwd: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.parametrize(("argv", "words"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_an_everyday_mistake_is_one_line_and_status_2(
    workdir: Path, argv: list[str], words: list[str]
) -> None:
    before = _tree(workdir)
    r = vigil(workdir, *argv)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(lines) == 1, r.stderr
    assert all(w in lines[0] for w in words), (lines[0], words)
    assert r.stdout == ""
    assert _tree(workdir) == before  # nothing created, nothing changed
    assert not Path(READ_ONLY).exists()


@pytest.fixture()
def bad_timezone(workdir: Path) -> Path:
    from vigil.config import default_deployment_path

    text = default_deployment_path().read_text(encoding="utf-8")
    assert 'timezone = "America/Phoenix"' in text
    path = workdir / "badtz.toml"
    path.write_text(text.replace('timezone = "America/Phoenix"', 'timezone = "Mars/Olympus"'))
    return path


@pytest.mark.parametrize(
    "argv",
    [["config", "check", "badtz.toml"], ["demo", "--deployment", "badtz.toml", "--out", "d"],
     ["analyze", "afile", "--deployment", "badtz.toml", "--out", "rep"]],
    ids=["config-check", "demo", "analyze"],
)  # fmt: skip
def test_an_unknown_time_zone_is_refused_naming_key_value_and_line(
    workdir: Path, bad_timezone: Path, argv: list[str]
) -> None:
    line = next(i for i, t in enumerate(bad_timezone.read_text().splitlines(), 1) if "Mars" in t)
    before = _tree(workdir)
    r = vigil(workdir, *argv)
    assert r.returncode == 3, r.stderr  # a deployment that is not valid: config check's status
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: badtz.toml:{line}: sector.timezone = 'Mars/Olympus': unknown time zone; "
        "expected an IANA name such as America/Phoenix or UTC"
    ]
    assert _tree(workdir) == before


@pytest.mark.parametrize("group", ["config", "users"])
def test_a_group_without_its_action_prints_its_own_help(workdir: Path, group: str) -> None:
    r = vigil(workdir, group)
    assert r.returncode == 2
    assert r.stderr.startswith(f"usage: vigil {group} ")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "argv",
    [["detect", "afile", "--out", "d.jsonl", "--masks", "masks"], ["track", "afile", "--out",
     "t.csv"], ["analyze", "afile", "--out", "rep"]],
    ids=["detect", "track", "analyze"],
)  # fmt: skip
def test_an_input_that_is_not_what_it_should_be_leaves_nothing_behind(
    workdir: Path, argv: list[str]
) -> None:
    before = _tree(workdir)
    r = vigil(workdir, *argv)
    assert r.returncode == 3, r.stderr  # the input's content is wrong: a data error
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "afile" in r.stderr
    assert _tree(workdir) == before  # no empty output file or folder
