"""Cross-validation of the class-table fit on calibration seeds (issue 22): fit on the other
calibration recordings, replay each fold's seeds, per-body votes for animals and people.

Not a ``bench_*`` module. Reads the recordings ``benchmarks calibrate_classes --out DIR`` keeps
(calibration seeds only: an evaluation recording is refused). Usage:
``python -m benchmarks.class_folds DIR --grid 'per_track=30' 'per_track=30,temper=0.5'``: one
line per setting of :func:`vigil.tracks.label_fit.fit_tables`' options, with Wilson intervals.
Each fold is fitted on the recordings of ``--pool`` (default: every calibration seed recorded in
the folder) less the fold's own seeds: ``--pool 0 1 2 5 7 11`` against the default shows what
more calibration seeds buy (:data:`vigil.sim.seeds.CLASS_FIT_SEEDS`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def parse_setting(text: str) -> dict[str, float]:
    """``'a=1,b=2'`` -> ``{'a': 1.0, 'b': 2.0}`` (``''`` or ``default``: no options)."""
    if text in ("", "default"):
        return {}
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in text.split(","))}


def main(argv: list[str] | None = None) -> dict:
    """Fit and replay every fold for every setting; print and return the votes."""
    import msgspec

    from benchmarks.bench_calibrate_classes import rate
    from benchmarks.class_diagnosis import fit_on
    from vigil.cli.class_runs import replay_classes
    from vigil.config import load_default
    from vigil.sim.seeds import CALIBRATION_SEEDS

    p = argparse.ArgumentParser(prog="class_folds")
    p.add_argument("folder", type=Path)
    p.add_argument("--folds", nargs="+", default=["7,11", "0,1", "2,5"])
    p.add_argument("--grid", nargs="+", default=["default"])
    p.add_argument(
        "--fit-folder", type=Path, help="fit on these recordings (longer runs of the same seeds)"
    )
    p.add_argument(
        "--pool", type=int, nargs="+", help="fit on these seeds' recordings (less the fold's)"
    )
    args = p.parse_args(argv)
    fit_folder = args.fit_folder or args.folder
    d = load_default()
    seeds = sorted(args.pool or CALIBRATION_SEEDS)
    if not set(seeds) <= CALIBRATION_SEEDS:
        raise SystemExit(f"--pool {seeds}: calibration seeds only")
    seeds = [s for s in seeds if (fit_folder / f"seed{s}.vrec.gz").exists()]
    files = {s: args.folder / f"seed{s}.vrec.gz" for s in sorted(CALIBRATION_SEEDS)}
    out = {}
    for setting in args.grid:
        kw = parse_setting(setting)
        a, pp, sec = [0, 0], [0, 0], [0, 0, 0, 0]
        for fold in args.folds:
            held = [int(s) for s in fold.split(",")]
            if not set(held) <= CALIBRATION_SEEDS:
                raise SystemExit(f"fold {fold}: calibration seeds only")
            fit_files = [fit_folder / f"seed{s}.vrec.gz" for s in seeds if s not in held]
            print(f"  fold {fold}: fit on {len(fit_files)} recordings", flush=True)
            fit = fit_on(fit_files, d, **kw)
            config = msgspec.structs.replace(
                d.tracker_config(), camera_class_model=fit.camera, speed_class_model=fit.speed
            )
            for s in held:
                r = replay_classes(d.site, files[s], config)
                a[0] += r.animals_as_animal
                a[1] += r.animals
                pp[0] += r.people_as_person
                pp[1] += r.people
                m = r.confusion
                sec = [sec[0] + int(m[2, 2]), sec[1] + int(m[2].sum())] + [
                    sec[2] + int(m[0, 0]),
                    sec[3] + int(m[0].sum()),
                ]
        out[setting] = (a, pp, sec)
        print(
            f"{setting:>32}: animals {rate(*a)}; people {rate(*pp)}; per track-second "
            f"animals {sec[0] / sec[1]:.3f}, people {sec[2] / sec[3]:.3f}",
            flush=True,
        )
    return out


if __name__ == "__main__":
    main()
