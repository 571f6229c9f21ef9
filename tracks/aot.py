"""The tracker's kernels compiled ahead of time, so that a short ``vigil track`` run does not
pay for numba at start-up.

:mod:`vigil.tracks.kernels` is compiled on first use by numba (``cache=True``): importing
numba, setting up its compiler and loading the cached machine code takes about 0.6 s of CPU
in every new process (numba's start-up alone imports SciPy's linear algebra), which is most
of a ``vigil track`` run over a few hundred scans. ``python -m vigil.tracks.aot`` (``make``
runs it after installing) compiles the same functions with numba's ahead-of-time compiler
(:mod:`numba.pycc`, for this machine's CPU) into the extension module
``vigil.tracks._kernels_aot``, which needs only numpy to load; :func:`kernels` returns it
when it was built from the current ``kernels.py`` (a hash of its source is kept beside it),
and :mod:`vigil.tracks.kernels` (numba at run time) otherwise. Both are the same source
compiled by the same LLVM for the same CPU, without fast-math: the results are identical
(``tests/test_track_aot.py`` checks).
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from types import ModuleType

#: The extension module's name, in this package.
MODULE = "_kernels_aot"
_HERE = Path(__file__).resolve().parent
_HASH_FILE = _HERE / f"{MODULE}.sha256"

# numba type strings
_F1, _F2, _F3 = "f8[:]", "f8[:,:]", "f8[:,:,:]"
_I1, _B1, _S1 = "i8[:]", "b1[:]", "i1[:]"
# C-contiguous (the IMM's kernels: their callers pass whole or freshly made arrays, and
# the known layout lets LLVM index and copy without strides; same operations, same results)
_F1C, _F2C, _F3C, _F4C = "f8[::1]", "f8[:,::1]", "f8[:,:,::1]", "f8[:,:,:,::1]"
_I1C, _B1C = "i8[::1]", "b1[::1]"

#: Each exported kernel's signature: the types :class:`vigil.tracks.tracker.Tracker` and
#: :mod:`vigil.tracks.csvfile` pass (int64 counts and indices, float64 values).
SIGNATURES: dict[str, str] = {
    "predict_cv": f"void({_F2}, {_F3}, {_F1}, i8, f8, f8)",
    "kalman_update": f"void({_F2}, {_F3}, i8, {_I1}, {_F2}, {_F3}, {_B1})",
    "class_from_evidence": f"void({_F2}, {_F2}, i8, f8, f8, {_F1})",
    "add_class_evidence": f"void({_F2}, i8, {_F1}, f8, f8)",
    "fuse_class": f"void({_F2}, {_F2}, i8, {_I1}, {_F2}, f8, f8, f8, f8, {_F1})",
    "gate_radius": f"void({_F3}, i8, f8, f8, {_F1})",
    "batch_extent": f"UniTuple(f8, 5)({_F2}, {_F3})",
    "mean_selected": f"f8({_F1}, {_B1}, i8)",
    "grid_index": f"void({_F2}, i8, f8, f8, f8, i8, i8, {_I1}, {_I1})",
    "gate_pairs": (
        f"i8({_F2}, {_F3}, i8, {_B1}, {_F1}, {_F2}, {_F3}, {_B1}, f8, f8, f8, i8, i8, "
        f"{_I1}, {_I1}, f8, f8, {_I1}, {_I1}, {_F1})"
    ),
    "near_pairs": f"i8({_F1}, {_F1}, f8, {_I1}, {_I1}, {_I1})",
    "assign_gnn": f"i8(i8, i8, {_I1}, {_I1}, {_F1}, i8, {_I1}, {_I1})",
    "manage": (
        f"i8({_S1}, {_I1}, {_I1}, {_I1}, {_F1}, {_F3}, i8, {_I1}, {_B1}, f8, i8, i8, f8, f8, f8)"
    ),
    "compact": (
        f"i8({_B1}, i8, {_I1}, {_S1}, {_F2}, {_F3}, {_F1}, {_F1}, {_F1}, {_I1}, {_I1}, {_I1}, "
        f"{_F2}, {_F2}, {_F2})"
    ),
    "imm_predict": (
        f"void({_F3C}, {_F4C}, {_F2C}, {_F1C}, i8, f8, {_F1C}, {_F1C}, {_F2C}, {_F3C})"
    ),
    "imm_after": (
        f"i8({_I1C}, i8, {_I1C}, i8, i8, {_I1C}, {_B1C}, {_F3C}, {_F4C}, {_F2C}, {_F2C}, "
        f"{_F3C}, {_B1C}, f8, i8, {_F1C}, {_F2C}, {_F3C}, {_F2C}, {_F3C})"
    ),
    "imm_batch": (
        f"i8({_I1C}, i1[::1], {_F2C}, {_F3C}, {_F1C}, {_F1C}, {_F1C}, {_I1C}, {_I1C}, {_I1C}, "
        f"{_F2C}, {_F2C}, {_F2C}, {_F3C}, {_F4C}, {_F2C}, {_F1C}, i8, i8, f8, b1, {_F2C}, "
        f"{_F1C}, {_F1C}, {_F1C}, {_F1C}, {_F1C}, i8, {_F1C}, {_I1C}, {_I1C}, {_F1C}, {_I1C}, "
        f"{_I1C}, {_B1C}, {_I1C})"
    ),
    "hit_loglik": f"void({_F3}, i8, {_I1}, {_F3}, {_F2}, {_F2}, {_F1})",
    "manage_score": (
        f"i8({_S1}, {_F2}, {_I1}, {_F1}, {_F3}, i8, {_I1}, {_F1}, {_B1}, f8, f8, f8, f8, f8, "
        "f8, f8, f8, f8, f8)"
    ),
    "track_rows": (f"i8({_I1}, {_F2}, {_F3}, {_S1}, i8, i8, f8, i8, {_I1}, {_F2}, {_I1}, {_S1})"),
    "canonical_order": f"void({_F1}, {_I1}, {_F1}, {_F1}, {_I1})",
    "format_rows": (f"i8(u1[:], i8, i8, {_I1}, {_F2}, {_S1}, i8, i8, u1[:], u1[:], u1[:], {_I1})"),
}


def source_hash() -> str:
    """SHA-256 of ``kernels.py``'s source and of this module's signatures."""
    h = hashlib.sha256((_HERE / "kernels.py").read_bytes())
    h.update(repr(sorted(SIGNATURES.items())).encode())
    return h.hexdigest()


def kernels() -> ModuleType:
    """The compiled kernels: the ahead-of-time module when it was built from the current
    source, else :mod:`vigil.tracks.kernels` (numba, compiled or loaded from its cache)."""
    try:
        built = _HASH_FILE.read_text(encoding="ascii").strip()
    except OSError:
        built = ""
    if built and built == source_hash():
        try:
            return importlib.import_module(f"vigil.tracks.{MODULE}")
        except ImportError:
            pass
    from vigil.tracks import kernels as jit

    return jit


def build(out_dir: Path = _HERE) -> Path:
    """Compile the kernels ahead of time into ``out_dir`` (this package by default) and
    record the source hash; returns the extension module's path. Takes a minute or more.
    The module and its hash are moved into place when complete (a process that has the
    previous module loaded keeps it)."""
    import os
    import tempfile
    import warnings

    with warnings.catch_warnings():  # pycc: "pending deprecation" since numba 0.57
        warnings.simplefilter("ignore")
        from numba.pycc import CC

    from vigil.tracks import kernels as jit

    digest = source_hash()
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".aot-") as tmp:
        cc = CC(MODULE)
        cc.output_dir = tmp
        cc.target_cpu = "host"  # as numba's JIT does: the same instructions, the same results
        for name, sig in SIGNATURES.items():
            cc.export(name, sig)(getattr(jit, name).py_func)
        cc.compile()
        built = [p for p in Path(tmp).iterdir() if p.name.startswith(MODULE + ".")]
        if len(built) != 1:
            raise RuntimeError(f"numba.pycc made {[p.name for p in built]}; expected one module")
        (out_dir / f"{MODULE}.sha256").unlink(missing_ok=True)  # stale until the module is in
        target = out_dir / built[0].name
        os.replace(built[0], target)
        (Path(tmp) / "hash").write_text(digest + "\n", encoding="ascii")
        os.replace(Path(tmp) / "hash", out_dir / f"{MODULE}.sha256")
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m vigil.tracks.aot``: build the ahead-of-time kernels; ``--check`` only says
    whether they are built and current (exit 1 when not)."""
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        current = kernels().__name__.endswith(MODULE)
        print("ahead-of-time kernels: " + ("current" if current else "missing or stale"))
        return 0 if current else 1
    path = build()
    print(f"built {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
