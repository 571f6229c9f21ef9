"""Motion detection in camera frames: numba kernels and the detector that wraps them."""
