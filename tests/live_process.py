"""Run the test live map (:func:`live_client.running_world`) in a process of its own, so a test
can measure the server's memory and load it without sharing its interpreter.

``python tests/live_process.py DIR [--production-hash]`` prints the server's URL on one line
and serves until its standard input closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from live_client import FAST_HASH, running_world  # noqa: E402


def main() -> None:
    tmp = Path(sys.argv[1])
    hasher = None if "--production-hash" in sys.argv[2:] else FAST_HASH
    with running_world(tmp, hasher=hasher) as world:
        print(world.server.url, flush=True)
        sys.stdin.read()  # until the test closes the pipe


if __name__ == "__main__":
    main()
