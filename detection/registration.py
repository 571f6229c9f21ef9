"""Registration against camera shake: estimate each frame's shift, then shift it back.

A mast sways in the wind; a few pixels of shake make every edge in the picture look like
motion. The shift between a frame and a slowly updated reference is estimated on a
half-size copy by OpenCV's ECC (enhanced correlation coefficient, translation only), started
from the previous frame's shift, with phase correlation to restart it when it fails; it is
undone with a bilinear shift (:func:`vigil.detection.kernels.shift_bilinear`). Phase correlation
alone is biased by up to half a pixel on the smooth pictures thermal cameras make; ECC is
accurate to a few hundredths.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from vigil.detection import kernels
from vigil.detection.background import DetectionError


def shift_image(
    frame: NDArray[np.uint8], dx: float, dy: float, out: NDArray[np.uint8] | None = None
) -> NDArray[np.uint8]:
    """Move an image's content right by ``dx`` and down by ``dy`` pixels (edges replicated)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 2:
        raise DetectionError(f"frame {frame.dtype} {frame.shape}; expected 2-D uint8")
    if not (np.isfinite(dx) and np.isfinite(dy)):
        raise DetectionError(f"shift ({dx!r}, {dy!r}); expected finite pixels")
    if out is None:
        out = np.empty_like(frame)
    kernels.shift_bilinear(np.ascontiguousarray(frame), float(dx), float(dy), out)
    return out


def estimate_shift(
    reference: NDArray[np.floating], frame: NDArray[np.floating], window: NDArray | None = None
) -> tuple[float, float, float]:
    """Shift ``(dx, dy)`` in pixels that moves ``reference`` onto ``frame``, and the peak's
    response (0 to 1; below about 0.05 the estimate means little)."""
    (dx, dy), response = cv2.phaseCorrelate(
        np.asarray(reference, np.float32), np.asarray(frame, np.float32), window
    )
    return float(dx), float(dy), float(response)


#: ``"lkg"`` (:meth:`ShakeCompensator.made_for`): ``"lk"`` with ECC deciding the frames whose
#: shift is over this many pixels (jolts: on calibration seeds 912 and 918, 2-4 % of frames,
#: where the two differ most, up to 0.16 px; elsewhere they agree within 0.02 px).
GUARD_PX = 0.5


class ShakeCompensator:
    """Register a camera's frames to a slowly updated reference.

    Parameters
    ----------
    shape
        ``(height, width)`` of the frames, pixels.
    scale
        Down-scaling of the copy the shift is estimated on (2 halves each side).
    max_shift_px
        Larger estimated shifts are taken as failures and the frame is left as it is.
    reference_rate
        Weight of each registered frame in the reference's running mean.
    min_response
        Phase-correlation peaks weaker than this are ignored.
    method
        ``"ecc"``: OpenCV's ECC (translation) on the copy; ``"lk"``: a Gauss-Newton
        translation with a gain and an offset (:func:`vigil.detection.kernels.track_translation`,
        numba), several times faster than ECC for the same copy. Either falls back to
        phase correlation when it fails.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        scale: int = 2,
        max_shift_px: float = 20.0,
        reference_rate: float = 0.05,
        min_response: float = 0.03,
        method: str = "ecc",
        guard_px: float = 0.0,
    ) -> None:
        h, w = (int(s) for s in shape)
        if scale not in (1, 2, 4, 8):
            raise DetectionError(f"registration scale={scale!r}; expected 1, 2, 4 or 8")
        if method not in ("ecc", "lk"):
            raise DetectionError(f"registration method={method!r}; expected 'ecc' or 'lk'")
        self.method = method
        #: with ``"lk"``: where its shift is over this many pixels (a jolt), ECC from the
        #: previous frame's shift decides instead (0: never)
        self.guard_px = float(guard_px)
        self.shape = (h, w)
        self.scale = scale
        self.max_shift_px = max_shift_px
        self.reference_rate = reference_rate
        self.min_response = min_response
        self._small = (w // scale, h // scale)
        self._window = cv2.createHanningWindow(self._small, cv2.CV_32F)
        self._reference: NDArray[np.float32] | None = None
        self.out = np.empty((h, w), np.uint8)
        self.last_shift = (0.0, 0.0)
        self._criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 15, 1e-3)
        # the Gauss-Newton's border: room for the largest shift on the copy
        self._margin = int(np.ceil(max_shift_px / scale)) + 2
        self._track = np.zeros(5, np.float64)
        self._gx = np.zeros((h // scale, w // scale), np.float32)
        self._gy = np.zeros((h // scale, w // scale), np.float32)

    @classmethod
    def made_for(cls, shape: tuple[int, int], method: str = "ecc") -> ShakeCompensator:
        """The registration a detector uses: ECC on a half-size copy, or ``"lk"`` on a copy
        at most 480 pixels wide (half of 640x480, a quarter of 1920x1080); ``"lk4"`` is
        ``"lk"`` on a copy at most 240 pixels wide (opt-in reduced work); ``"lkg"`` is
        ``"lk"`` with ECC on the same copy for shifts over :data:`GUARD_PX` (opt-in: as the
        thermal default's registration it met the four lines at 19 of 25 calibration scenes
        against ECC's 20, so no default uses it)."""
        if method == "ecc":
            return cls(shape)
        scale, widest = 2, 240 if method == "lk4" else 480
        while scale < 8 and shape[1] / scale > widest:
            scale *= 2
        guard = GUARD_PX if method == "lkg" else 0.0
        return cls(shape, scale=scale, method="lk", guard_px=guard)

    def _small_copy(self, frame: NDArray[np.uint8]) -> NDArray[np.float32]:
        if self.scale == 1:
            return frame.astype(np.float32)
        return cv2.resize(frame, self._small, interpolation=cv2.INTER_AREA).astype(np.float32)

    def _ecc(self, small: NDArray[np.float32], dx: float, dy: float) -> tuple[float, float] | None:
        if self.method == "lk":
            out = self._track
            kernels.track_translation(
                self._reference, small, dx, dy, self._margin, 15, 1e-3, self._gx, self._gy, out
            )
            found = (float(out[0]), float(out[1])) if out[2] > 0 else None
            if (
                found is not None
                and self.guard_px > 0
                and max(abs(found[0]), abs(found[1])) * self.scale > self.guard_px
            ):
                return self._ecc_warp(small, dx, dy) or found
            return found
        return self._ecc_warp(small, dx, dy)

    def _ecc_warp(
        self, small: NDArray[np.float32], dx: float, dy: float
    ) -> tuple[float, float] | None:
        warp = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        try:
            _, warp = cv2.findTransformECC(
                self._reference, small, warp, cv2.MOTION_TRANSLATION, self._criteria, None, 1
            )
        except cv2.error:
            return None
        return float(warp[0, 2]), float(warp[1, 2])

    def __call__(self, frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The frame shifted back onto the reference (a buffer reused between calls)."""
        small = self._small_copy(frame)
        if self._reference is None:
            self._reference = small
            np.copyto(self.out, frame)
            return self.out
        px, py = self.last_shift[0] / self.scale, self.last_shift[1] / self.scale
        found = self._ecc(small, px, py)
        if found is None or max(abs(found[0]), abs(found[1])) * self.scale > self.max_shift_px:
            dx, dy, response = estimate_shift(self._reference, small, self._window)
            found = (
                self._ecc(small, round(dx), round(dy)) if response >= self.min_response else None
            )
        if found is None or max(abs(found[0]), abs(found[1])) * self.scale > self.max_shift_px:
            found = (0.0, 0.0)
        dx, dy = found[0] * self.scale, found[1] * self.scale
        self.last_shift = (dx, dy)
        kernels.shift_bilinear(frame, -dx, -dy, self.out)
        # The reference follows the frames as they came, not as registered: shake is
        # zero-mean and brief, so their mean stays where the camera points. A reference made
        # of registered frames has no such anchor and walks off with every small bias of
        # the estimate (walkers crossing a low-texture scene pull it along).
        cv2.accumulateWeighted(small, self._reference, self.reference_rate)
        return self.out
