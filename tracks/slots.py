"""Read-only views of a tracker's per-slot arrays over its live slots."""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray


class LiveSlots:
    """A read-only view of one of the tracker's per-slot arrays over its live slots."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc

    def __get__(self, tracker: Any, owner: type | None = None) -> NDArray:
        if tracker is None:
            return self  # type: ignore[return-value]  # the class attribute, for its docs
        view = getattr(tracker, self.name)[: tracker.n]
        view.flags.writeable = False
        return view
