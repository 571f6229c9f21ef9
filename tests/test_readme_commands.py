"""README.md's "The command line" block runs as written on a fresh clone (issue 17).

The block is read from README.md, so the test follows it. Each command runs from a temporary
folder that holds the clone's ``vigil/data`` (what a user who cloned the project has there),
with small sizes: ``--hours`` and ``--minutes`` are shrunk, and nothing else is changed, unless
a line needs what a test cannot give it as written:

- ``vigil demo --serve`` serves in real time until ``--hours`` are simulated: it runs for
  about a second of simulated time, on a free port, with the users file ``vigil users add``
  made before it (the README lists that line first).
- ``vigil edge camera|ugs|uas SOURCE --broker HOST:PORT`` is a pattern: each adapter runs on
  the files ``vigil simulate`` wrote, without ``--broker`` (validated and counted in process),
  since a broker is not part of a fresh clone.
- ``vigil analyze --db-schema`` needs a PostgreSQL server (tests/test_history_pg.py runs it
  against a throwaway cluster): it runs to ``--help``.
- ``vigil run``, ``vigil serve``, ``vigil alerts``, ``vigil record`` and ``vigil replay`` need a
  running broker (tests/test_cli_connection.py, tests/test_recording.py and tests/test_e2e_mqtt.py
  run them against Mosquitto): here they run to ``--help``.
- ``vigil labels export`` reads the live map's audit database: it runs after ``vigil users
  add`` has made one (no labels in it yet: the CSV's header alone).
- ``vigil edge camera onvif --onvif HOST:PORT ...`` needs a live ONVIF camera and a broker
  (tests/test_onvif_camera_mqtt.py runs it against the virtual camera): it runs to ``--help``.

Every README line must be one of the cases below, so that a new line gets a case.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from broker import free_port

REPO = Path(__file__).resolve().parents[1]
SMALL = {"--hours": "0.004", "--minutes": "0.05"}
NEEDS_BROKER = ("run", "serve", "alerts", "record", "replay")
PASSWORD = "a long pass phrase for the readme test"
VIGIL = Path(sys.executable).with_name("vigil")

pytestmark = pytest.mark.slow


def readme_commands() -> list[str]:
    """The commands of README.md's "The command line" block, comments removed."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## The command line\n\n```\n(.*?)```", text, re.S)
    assert block, "README.md has no 'The command line' block"
    commands = []
    for line in block.group(1).splitlines():
        command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
        if command:
            assert command.startswith("vigil "), line
            commands.append(command)
    return commands


def small(argv: list[str]) -> list[str]:
    """``argv`` with its sizes shrunk for a test."""
    out = list(argv)
    for i, a in enumerate(out[:-1]):
        if a in SMALL:
            out[i + 1] = SMALL[a]
    return out


PLACEHOLDERS = {"FILE": "vigil/data/tucson.toml", "HOST:PORT": "127.0.0.1:1883"}


def plan(command: str) -> tuple[str, list[list[str]]]:
    """How a README command runs here: what it runs after (``users``, ``simulate`` or
    nothing: it uses what that wrote) and the argument lists to run."""
    if "|" in command or " / " in command:
        if command.startswith("vigil edge "):
            return "simulate", [
                ["edge", "camera", "sim/cameras/t01.avi", "--id", "t01"],
                ["edge", "ugs", "sim/ugs.jsonl"],
                ["edge", "uas", "sim/uas.tlog"],
            ]
        names = [part.split()[1] for part in command.split(" / ")]
        assert all(n in NEEDS_BROKER for n in names), command
        return "", [[n, "--help"] for n in names]
    argv = [PLACEHOLDERS.get(a, a) for a in shlex.split(command)[1:]]
    if argv[0] in NEEDS_BROKER or "--onvif" in argv:
        return "", [[*argv, "--help"]]  # its arguments as written are checked, then its help
    if argv[0] == "analyze" and "--db-schema" in argv:
        return "", [[*argv, "--help"]]  # needs a PostgreSQL server (tests/test_history_pg.py)
    if argv[0] == "demo" and "--hours" not in argv and "--serve" not in argv:
        argv = [*argv, "--hours", "1"]  # a demo at its default length is shrunk like the rest
    if argv[:2] == ["users", "add"]:
        return "users", [["users", "add", "ana", *argv[3:]]]
    if argv[0] == "labels":
        return "users", [argv]  # reads the audit database that vigil users add made
    if argv[0] == "demo" and "--serve" in argv:
        return "users", [[*argv, "--hours", "0.0003", "--port", str(free_port())]]
    if argv[0] == "detect":
        return "simulate", [small(argv)]
    if argv[0] in ("simulate", "demo"):
        return ("simulate" if argv[0] == "simulate" else ""), [[*small(argv), "--quiet"]]
    return "", [small(argv)]


def run(folder: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_PASSWORD": PASSWORD}
    # the console script, as the README runs it (``python -m`` would put the folder, which
    # holds vigil/data, in front of the installed package)
    return subprocess.run(
        [str(VIGIL), *argv],
        cwd=folder, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_the_readme_lists_the_commands_the_parser_has() -> None:
    from vigil.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    named = {c.split()[1] for c in readme_commands()}
    named |= {p.split()[1] for c in readme_commands() for p in c.split(" / ")[1:]}
    assert named <= set(sub.choices), named - set(sub.choices)


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    assert VIGIL.is_file(), f"no vigil console script beside {sys.executable}"
    shutil.copytree(REPO / "vigil" / "data", tmp_path / "vigil" / "data")
    # independent commands run side by side; a chain (users add, then demo --serve; simulate,
    # then what reads its files) runs in order, the first of the chain first
    chains: dict[str, list[list[str]]] = {"users": [], "simulate": []}
    alone: list[list[list[str]]] = []
    for command in readme_commands():
        after, argvs = plan(command)
        if after:
            first = argvs[0][0] in ("users", "simulate") and argvs[0][:2] != ["demo", "--serve"]
            chain = chains[after]
            if first:
                chain[:0] = argvs
            else:
                chain.extend(argvs)
        else:
            alone.extend([a] for a in argvs)
    tasks = [c for c in chains.values() if c] + alone
    assert chains["users"][0][:2] == ["users", "add"], chains["users"]
    assert chains["simulate"][0][0] == "simulate", chains["simulate"]

    def run_chain(chain: list[list[str]]) -> list[str]:
        failed = []
        for argv in chain:
            r = run(tmp_path, argv)
            if r.returncode != 0 or "Traceback" in r.stderr:
                tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
                failed.append(f"vigil {shlex.join(argv)} -> {r.returncode}: {tail}")
        return failed

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        failures = [f for failed in pool.map(run_chain, tasks) for f in failed]
    assert not failures, "\n".join(failures)
    # what the commands were to write is there
    for path in ("map.html", "demo-out/summary.json", "sim/manifest.json", "det.jsonl",
                 "tracks.csv", "report/report.html", "usbp/summary.json",
                 "vigil-users.sqlite"):  # fmt: skip
        assert (tmp_path / path).is_file(), path
