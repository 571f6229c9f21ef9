"""Foreground mask -> blobs: binary rank filters (morphology) and connected components.

Both run in numba (:mod:`vigil.detection.kernels`); ``benchmarks/bench_detection.py`` measures
them against OpenCV's ``medianBlur`` and ``connectedComponentsWithStats`` (BBDT), which they
beat on the sparse masks motion detection makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vigil.detection import kernels
from vigil.detection.background import DetectionError


@dataclass(frozen=True)
class Blobs:
    """Connected regions of a mask, one entry per blob; pixels, image coordinates.

    ``left, top, width, height`` is the bounding box (integer pixels), ``area`` the pixel
    count and ``(cx, cy)`` the centroid in pixel-index coordinates (the centre of pixel
    ``(i, j)`` is ``(i, j)``; add 0.5 for continuous coordinates). ``var_u, var_v``, when
    set (:func:`vigil.detection.centroid.refine_centroids`), are the blob's intensity-weighted
    variances across and down the image, pixels^2, and ``peak`` its greatest difference from
    the background, grey levels.
    """

    left: NDArray[np.int32]
    top: NDArray[np.int32]
    width: NDArray[np.int32]
    height: NDArray[np.int32]
    area: NDArray[np.int32]
    cx: NDArray[np.float64]
    cy: NDArray[np.float64]
    var_u: NDArray[np.float64] | None = None
    var_v: NDArray[np.float64] | None = None
    peak: NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return int(self.area.shape[0])

    @classmethod
    def empty(cls) -> Blobs:
        """No blobs."""
        i = np.zeros(0, np.int32)
        f = np.zeros(0, np.float64)
        return cls(i, i, i, i, i, f, f)


def _check_mask(mask: NDArray[np.uint8], name: str = "mask") -> NDArray[np.uint8]:
    mask = np.asarray(mask)
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise DetectionError(f"{name} {mask.dtype} {mask.shape}; expected a 2-D uint8 array")
    return np.ascontiguousarray(mask)


def rank_filter(
    mask: NDArray[np.uint8], size: int, min_count: int, out: NDArray[np.uint8] | None = None
) -> NDArray[np.uint8]:
    """Binary rank filter: 255 where at least ``min_count`` pixels of the window are set.

    ``size`` is the odd window side (1 to 15 pixels); edges are replicated.
    """
    mask = _check_mask(mask)
    if not (isinstance(size, int | np.integer) and size % 2 == 1 and 1 <= size <= 15):
        raise DetectionError(f"rank filter size={size!r}; expected an odd integer in [1, 15]")
    if not 1 <= min_count <= size * size:
        raise DetectionError(f"rank filter min_count={min_count!r}; expected 1 to {size * size}")
    h, w = mask.shape
    if out is None:
        out = np.empty_like(mask)
    kernels.rank_filter(
        mask,
        int(size),
        int(min_count),
        out,
        np.empty(w + size - 1, np.uint8),
        np.empty(w, np.uint8),
        np.empty(h, np.uint8),
    )
    return out


def majority_filter(
    mask: NDArray[np.uint8], size: int = 5, out: NDArray[np.uint8] | None = None
) -> NDArray[np.uint8]:
    """Median of a binary mask over a ``size`` x ``size`` window: clears speckle, fills holes."""
    return rank_filter(mask, size, (size * size + 1) // 2, out)


def dilate(
    mask: NDArray[np.uint8], size: int = 3, out: NDArray[np.uint8] | None = None
) -> NDArray[np.uint8]:
    """Binary dilation with a ``size`` x ``size`` square."""
    return rank_filter(mask, size, 1, out)


def erode(
    mask: NDArray[np.uint8], size: int = 3, out: NDArray[np.uint8] | None = None
) -> NDArray[np.uint8]:
    """Binary erosion with a ``size`` x ``size`` square (edges replicated)."""
    return rank_filter(mask, size, size * size, out)


class BlobFinder:
    """Clean a camera's foreground masks and find their blobs, with buffers kept between frames.

    Parameters
    ----------
    shape
        ``(height, width)`` of the masks, pixels.
    filter_size
        Side of the majority filter's window, pixels (odd); 1 turns it off. A 5-pixel
        window removes blobs smaller than about 4 x 4 pixels: use 1 or 3 when distant
        people are a few pixels tall.
    max_blobs
        Most blobs reported per frame; beyond it, the largest are kept.
    """

    def __init__(self, shape: tuple[int, int], filter_size: int = 5, max_blobs: int = 4096):
        h, w = (int(s) for s in shape)
        if not (filter_size % 2 == 1 and 1 <= filter_size <= 15):
            raise DetectionError(f"filter_size={filter_size!r}; expected an odd integer in [1, 15]")
        if max_blobs < 1:
            raise DetectionError(f"max_blobs={max_blobs!r}; expected at least 1")
        self.shape = (h, w)
        self.filter_size = filter_size
        self.max_blobs = max_blobs
        self.clean = np.zeros((h, w), np.uint8)
        self._colsum = np.empty(w + filter_size - 1, np.uint8)
        self._acc = np.empty(w, np.uint8)
        self._rows = np.empty(h, np.uint8)
        cap = h * ((w + 1) // 2)
        self._stats = np.empty((cap, 5), np.int32)
        self._centroids = np.empty((cap, 2), np.float64)
        self._scratch = [np.empty(cap, np.int32) for _ in range(5)]
        self._no_labels = np.empty((0, 0), np.int32)

    def __call__(self, mask: NDArray[np.uint8]) -> Blobs:
        """Filter ``mask`` into :attr:`clean` and return the blobs of the result."""
        mask = _check_mask(mask)
        if mask.shape != self.shape:
            raise DetectionError(f"mask shape {mask.shape}; expected {self.shape}")
        size = self.filter_size
        if size > 1:
            kernels.rank_filter(
                mask, size, (size * size + 1) // 2, self.clean, self._colsum, self._acc, self._rows
            )
        else:
            np.copyto(self.clean, mask)
        n = kernels.label_components(
            self.clean, self._no_labels, self._stats, self._centroids, *self._scratch
        )
        st = self._stats[:n]
        ce = self._centroids[:n]
        if n > self.max_blobs:
            keep = np.sort(np.argsort(-st[:, 4], kind="stable")[: self.max_blobs])
            st, ce = st[keep], ce[keep]
        return Blobs(
            left=st[:, 0].copy(),
            top=st[:, 1].copy(),
            width=st[:, 2].copy(),
            height=st[:, 3].copy(),
            area=st[:, 4].copy(),
            cx=ce[:, 0].copy(),
            cy=ce[:, 1].copy(),
        )


def label_components(
    mask: NDArray[np.uint8],
) -> tuple[NDArray[np.int32], Blobs]:
    """8-connected components of a mask: the label image (0 background, 1..n) and the blobs."""
    mask = _check_mask(mask)
    h, w = mask.shape
    cap = h * ((w + 1) // 2)
    labels = np.empty((h, w), np.int32)
    stats = np.empty((cap, 5), np.int32)
    centroids = np.empty((cap, 2), np.float64)
    scratch = [np.empty(cap, np.int32) for _ in range(5)]
    n = kernels.label_components(mask, labels, stats, centroids, *scratch)
    st, ce = stats[:n], centroids[:n]
    blobs = Blobs(
        st[:, 0].copy(),
        st[:, 1].copy(),
        st[:, 2].copy(),
        st[:, 3].copy(),
        st[:, 4].copy(),
        ce[:, 0].copy(),
        ce[:, 1].copy(),
    )
    return labels, blobs
