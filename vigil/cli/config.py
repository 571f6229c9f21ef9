"""``vigil config``: check a deployment file, and show the configuration in force.

``vigil config check FILE`` validates a file and says what it describes; ``vigil config show``
prints every section and every key as TOML, each value followed by where it came from: the
file and line that set it, or ``default``.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any

from vigil.cli.arguments import add_deployment, existing_file
from vigil.cli.common import EXIT_OK, CommandError, Subparsers, load_deployment, missing_action

if TYPE_CHECKING:
    import msgspec

    from vigil.config import Deployment

#: Values start at this column when the key is short enough, so the sources line up.
SOURCE_COLUMN = 44
_MISSING = object()


def cmd_config_check(args: argparse.Namespace) -> int:
    """Check a deployment file and print what it describes."""
    from vigil.config import ConfigError, load

    try:
        d = load(args.file)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    for warning in d.warnings:
        print(f"warning: {d.path}: {warning}", file=sys.stderr)
    c = d.config
    border = c.border()
    print(
        f"{d.path}: ok: sector {c.sector.name!r}, {border.length_m / 1000:.1f} km of the "
        f"{c.sector.boundary} boundary in {len(border.segments)} segments; "
        f"{len(c.towers)} towers, {len(c.sensors)} ground sensors, {len(c.aircraft)} aircraft, "
        f"{len(c.units)} patrol units, {len(c.zones)} zones, {len(c.roads)} roads, "
        f"{len(c.corridors)} corridors; class model "
        f"{_class_model_summary(d)}; CoT {'on: ' + c.cot.url if c.cot.enabled else 'off'}"
    )
    return EXIT_OK


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the effective configuration with the source of each value."""
    d = load_deployment(args.deployment)
    for warning in d.warnings:
        print(f"warning: {d.path}: {warning}", file=sys.stderr)
    sys.stdout.write(effective_configuration(d))
    return EXIT_OK


def effective_configuration(d: Deployment) -> str:
    """Every section and key of a loaded deployment as TOML, each value with its source.

    A value the file sets is followed by ``# FILE:LINE``; one it leaves out by ``# default``.
    An unset optional value (TOML has no null) is written as a comment,
    ``# key = (not set)  # default``. The text parses back as TOML to the same settings.
    """
    import tomllib

    import msgspec

    raw = tomllib.loads(d.text)
    lines = [
        f"# The configuration in force for sector {d.sector!r}, from {d.path}.",
        "# After each value, where it came from: the file and line that set it, or 'default'.",
        "",
    ]
    for name in type(d.config).__struct_fields__:
        value = getattr(d.config, name)
        if isinstance(value, msgspec.Struct):
            _table(lines, d, raw, [name], value, array=False)
            if name == "classes":
                lines += [f"# class model: {_class_model_summary(d)}", ""]
        elif isinstance(value, list) and value and isinstance(value[0], msgspec.Struct):
            for i, item in enumerate(value):
                _table(lines, d, raw, [name, i], item, array=True)
        elif isinstance(value, list):
            lines.append(f"# [[{name}]]: none")
            lines.append("")
        else:
            lines.append(_entry(d, raw, [name], value))
    return "\n".join(lines).rstrip() + "\n"


def _class_model_summary(d: Deployment) -> str:
    path = d.calibration_path()
    model = d.class_model
    if path is None:
        return "neutral (no calibration file)"
    return f"{len(model.camera)} camera rows and {len(model.speed)} speed rows from {path}"


def _table(
    lines: list[str],
    d: Deployment,
    raw: dict,
    path: list[str | int],
    value: msgspec.Struct,
    *,
    array: bool,
) -> None:
    """One table (or one entry of an array of tables) and its subtables, with sources."""
    import msgspec

    names = ".".join(p for p in path if isinstance(p, str))
    present = _raw_at(raw, path) is not _MISSING
    header = f"[[{names}]]" if array else f"[{names}]"
    lines.append(header if present else f"{header}  # default: not in the file")
    subtables: list[tuple[str, msgspec.Struct]] = []
    keys = list(type(value).__struct_fields__)
    if "tower" in keys:  # a camera override: which camera first
        keys.insert(0, keys.pop(keys.index("tower")))
    for key in keys:
        v = getattr(value, key)
        if isinstance(v, msgspec.Struct):
            subtables.append((key, v))
            continue
        if (
            v is None
            and path[0] in ("detection", "cameras")
            and key in type(d.config.detection).__struct_fields__
        ):
            lines.append(_detection_default(d, raw, key, camera=path[0] == "cameras"))
        else:
            lines.append(_entry(d, raw, [*path, key], v))
    lines.append("")
    for key, sub in subtables:
        _table(lines, d, raw, [*path, key], sub, array=False)


def _detection_default(d: Deployment, raw: dict, key: str, *, camera: bool) -> str:
    """An unset detection key says where its value comes from: for a camera override the
    ``[detection]`` value it takes, else the sensor kind's default."""
    inherited = getattr(d.config.detection, key)
    if camera and inherited is not None:
        path: list[str | int] = ["detection", key]
        return _entry(d, raw, path, inherited, commented=True, suffix=" (from [detection])")
    return _entry(d, raw, ["detection", key], None, unset="(the sensor kind's default)")


def _entry(
    d: Deployment,
    raw: dict,
    path: list[str | int],
    value: Any,
    *,
    unset: str = "(not set)",
    commented: bool = False,
    suffix: str = "",
) -> str:
    """``key = value`` with its source; an unset value (or a ``commented`` one) as a comment."""
    import msgspec

    key = str(path[-1])
    if _raw_at(raw, path) is _MISSING:
        source = "default"
    else:
        line = d.line_of(*path)
        source = f"{d.path.name}:{line}" if line else d.path.name
    if value is None:
        text = f"# {key} = {unset}"
    else:
        text = f"{'# ' if commented else ''}{key} = {toml_value(msgspec.to_builtins(value))}"
    return f"{text.ljust(SOURCE_COLUMN)}  # {source}{suffix}"


def _raw_at(raw: Any, path: list[str | int]) -> Any:
    """The value at ``path`` in the file's plain data, or ``_MISSING`` when it is not there."""
    cur = raw
    for step in path:
        try:
            cur = cur[step]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return cur


def toml_value(v: Any) -> str:
    """A plain value (``msgspec.to_builtins`` output, no ``None``) as a TOML value.

    >>> toml_value([1, 2.5, "a", True, float("inf")])
    '[1, 2.5, "a", true, inf]'
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        import json

        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items() if x is not None)
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"{v!r}: not a TOML value")


def register(sub: Subparsers) -> None:
    """Add ``config`` and its actions to the top-level subcommands."""
    p = sub.add_parser(
        "config",
        help="check a deployment file, or show the configuration in force",
        description=(
            "Work with deployment files (one TOML file per sector). Besides the sector's "
            "layout, the file carries what a site tunes: [tracker], [alerts], [classes] (a "
            "calibration file and the prior), [service], [cot], [detection] with per-camera "
            "[[cameras]] overrides, and [terrain]; a key left out takes its default."
        ),
    )
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    pc = csub.add_parser(
        "check",
        help="validate a deployment file",
        description=(
            "Validate a deployment file and the calibration file it names: unknown keys, "
            "wrong types and out-of-range values are reported with the key, the value and the "
            "line; devices must be on the US side of the sector's border; camera overrides "
            "must name deployed towers. Warnings (no calibration file) go to stderr. Exit "
            "status 0 when valid, 3 when not."
        ),
    )
    pc.add_argument("file", type=existing_file, help="deployment TOML file")
    pc.set_defaults(func=cmd_config_check)
    ps = csub.add_parser(
        "show",
        help="print the configuration in force, with where each value came from",
        description=(
            "Print every section and every key of a deployment as TOML, the values the "
            "sector runs on: each is followed by '# FILE:LINE' where the file sets it or "
            "'# default' where it takes the documented default. Unset optional values are "
            "shown as comments. The class model's tables are summarised (rows and the "
            "calibration file they came from). The output parses back as the same settings."
        ),
    )
    add_deployment(ps)
    ps.set_defaults(func=cmd_config_show)
    p.set_defaults(func=lambda a: missing_action(p))
