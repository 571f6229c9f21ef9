"""Argument types of the ``vigil`` command line: each refuses a bad value while the arguments
are parsed, before any work starts, so that an everyday mistake ends with one line naming the
argument and the value (``vigil demo: error: argument --out: ...``) and exit status 2, and
nothing is half-written.

The output checks create nothing: a folder's writability is probed with a temporary file in
the nearest folder that exists, removed at once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = [
    "VigilParser",
    "broker_address",
    "existing_file",
    "input_source",
    "month",
    "nonnegative_float",
    "output_dir",
    "output_file",
    "port",
    "positive_float",
    "positive_int",
    "time_arg",
]


class VigilParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``PROG: error: MESSAGE (see PROG --help)``.

    argparse prints the usage before the message; a mistake is easier to read, and to test, as
    one line that names the argument and the value and says where the help is.
    """

    def error(self, message: str) -> NoReturn:
        """Print one line on stderr and exit with status 2."""
        line = " ".join(f"{self.prog}: error: {message} (see {self.prog} --help)".split())
        print(line, file=sys.stderr)
        raise SystemExit(2)


def _number(text: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a duration, a rate, a factor)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number > 0")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 0")
    return value


def positive_int(text: str) -> int:
    """A whole number > 0."""
    value = int(_number(text, int))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number > 0")
    return value


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    value = int(_number(text, int))
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port from 1 to 65535")
    return value


def month(text: str) -> int:
    """A month number, 1 (January) to 12."""
    value = int(_number(text, int))
    if not 1 <= value <= 12:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a month from 1 to 12")
    return value


def time_arg(text: str) -> float:
    """A time as UTC seconds since the epoch: epoch seconds, or ISO 8601 with Z or an offset."""
    from vigil.cli.common import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def broker_address(text: str) -> str:
    """``HOST:PORT`` (an empty host is 127.0.0.1, a missing port 1883), returned as given."""
    host, sep, number = text.rpartition(":")
    if not sep:
        host, number = text, ""
    if any(c.isspace() for c in host) or "/" in host:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    if number:
        try:
            port(number)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected HOST:PORT with a port from 1 to 65535"
            ) from None
    return text


def existing_file(text: str) -> str:
    """A file that exists and can be read."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: cannot be read (permission denied)")
    return text


def input_source(text: str) -> str:
    """A video file, an image-sequence pattern (``in%06d.jpg``, its folder must exist) or a
    stream URL (``rtsp://...``)."""
    if "://" in text:
        return text
    if "%" in text:
        folder = Path(text).parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r}: no folder {str(folder)!r}")
        return text
    return existing_file(text)


def _probe_folder(text: str, folder: Path) -> None:
    """Refuse unless a file can be created in ``folder`` (an existing folder)."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".vigil-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise argparse.ArgumentTypeError(
            f"{text!r}: cannot write in {str(folder)!r} ({reason})"
        ) from None


def _nearest_existing(text: str, path: Path) -> Path:
    """The nearest folder above ``path`` that exists; a file on the way is refused."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {str(parent)!r} is a file, not a folder")
    return parent


def output_file(text: str) -> str:
    """A file to write: not a folder, and its folder (or the nearest that exists) writable.

    An existing file is accepted (replaced); the command decides whether it may be.
    """
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected a file name")
    if path.exists():
        if not path.is_file():
            raise argparse.ArgumentTypeError(f"{text!r} exists and is not a regular file")
        try:
            with path.open("ab"):
                pass
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: cannot write ({exc.strerror})") from None
    _probe_folder(text, _nearest_existing(text, path))
    return text


def output_dir(text: str) -> str:
    """A folder to write into: an existing writable folder, or one that can be created."""
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a file; expected a folder")
        _probe_folder(text, path)
    else:
        _probe_folder(text, _nearest_existing(text, path))
    return text


class EmptyOutputsRemoved:
    """A context in which a command writes its outputs: when it ends with an exception, the
    outputs that did not exist before and are still empty (a file of 0 bytes, a folder with
    nothing in it) are removed, so a command that fails before writing anything leaves
    nothing behind. What holds data stays (a video that breaks at frame 100 keeps 99 frames).

    Parameters
    ----------
    paths
        The command's output files and folders (None for an output not asked for).
    """

    def __init__(self, *paths: str | Path | None) -> None:
        self.new = [Path(p) for p in paths if p is not None and not Path(p).exists()]

    def __enter__(self) -> EmptyOutputsRemoved:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            return
        for path in self.new:
            try:
                if path.is_file() and path.stat().st_size == 0:
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
            except OSError:
                pass


def add_deployment(
    p: argparse.ArgumentParser, help: str = "deployment TOML (default: the demo's)"
) -> None:
    """The ``--deployment FILE`` option every sector command takes (an existing file)."""
    p.add_argument("--deployment", metavar="FILE", type=existing_file, help=help)


def add_broker(p: argparse.ArgumentParser) -> None:
    """The ``--broker HOST:PORT`` option that overrides the deployment's broker."""
    p.add_argument(
        "--broker",
        metavar="HOST:PORT",
        type=broker_address,
        help="override the deployment's broker",
    )
