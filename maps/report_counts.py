"""The planners' counts report (:func:`vigil.maps.report.analyze_counts`): what the years are,
subtotals per border, monthly profiles, yearly levels and their changes, the busiest area each
year, a map of the areas whose places are known, and ``seasonality.json``."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.geo.patterns.analysis import CountsAnalysis
from vigil.geo.patterns.places import area_places
from vigil.geo.patterns.seasonality import MONTH_NAMES
from vigil.maps.offline import offline_map
from vigil.maps.report_page import html_table, new_figure, png_img, report_page, write_json

RECENT_YEARS = 5  # the changes the head names are those of the last this many whole years
HEAD_CHANGES = 6


def _month(iso: str) -> str:
    t = pd.Timestamp(iso)
    return f"{MONTH_NAMES[t.month - 1]} {t.year}"


def _peak_phrase(s: dict) -> str:
    if s.get("peak_month") is None:
        return f"no peak month ({s.get('reason', 'too little data')})"
    return (
        f"peak in {s['peak_month']} ({s['peak_ratio']:.2f}× the yearly mean), lowest in "
        f"{s['trough_month']} ({s['trough_ratio']:.2f}×)"
    )


def _trend_phrase(t: dict) -> str:
    if t.get("direction") in (None, "unknown"):
        return f"no long-run trend stated ({t.get('reason', 'too few years')})"
    pct = t.get("percent_per_year")
    rate = f", {pct:+.1f} % a year" if pct is not None else ""
    return f"long-run trend {t['direction']}{rate} (Theil–Sen over yearly means)"


def recent_changes(a: CountsAnalysis, years: int = RECENT_YEARS) -> list[dict]:
    """Year-on-year changes of every area in the last ``years`` whole years, largest first.

    Ranked by the change in the mean per month, so a large area's doubling leads a small
    area's.
    """
    whole = a.summary["whole_years"][-years:]
    rows = [
        c | {"group": g}
        for g, s in a.seasonality.items()
        for c in s["changes"]
        if c["label"] in whole
    ]
    return sorted(rows, key=lambda c: -abs(c["per_month"] - c["previous_per_month"]))


def counts_sentences(a: CountsAnalysis) -> list[str]:
    """The report's head: one plain sentence per finding, nothing the data cannot support."""
    s = a.summary
    lines = [
        f"{len(s['groups'])} areas, {s['months']} months from {_month(s['first_month'])} to "
        f"{_month(s['last_month'])}, {s['total']:,} in all. Years are {s['years']}.",
    ]
    if s["partial_years"]:
        parts = ", ".join(f"{y} ({n} of 12 months)" for y, n in s["partial_years"].items())
        lines.append(f"Partial years, left out of comparisons between years: {parts}.")
    subs = s.get("subtotals") or {}
    if subs:
        total = max(s["total"], 1)
        parts = ", ".join(
            f"{b} {v['total']:,} ({100 * v['total'] / total:.1f} %)"
            for b, v in sorted(subs.items(), key=lambda kv: -kv[1]["total"])
        )
        lines.append(f"By border: {parts}.")
    lines.append(f"All areas together: {_peak_phrase(s['all'])}.")
    for b, v in sorted(subs.items(), key=lambda kv: -kv[1]["total"]):
        lines.append(f"{b.capitalize()} border: {_peak_phrase(v)}.")
    t = s["all"]["trend"]
    last = s["whole_years"][-1] if s["whole_years"] else None
    level = ""
    if last is not None:
        level = f"; {last} averaged {s['all']['per_month_by_year'][last]:,.0f} a month"
    lines.append(f"All areas: {_trend_phrase(t)}{level}.")
    changes = recent_changes(a)[:HEAD_CHANGES]
    if changes:
        parts = "; ".join(
            f"{c['group']} {c['label']} ×{c['ratio']:.2f} ({c['previous_per_month']:,.0f} → "
            f"{c['per_month']:,.0f} a month)"
            for c in changes
        )
        lines.append(
            f"Largest changes from one whole year to the next, last {RECENT_YEARS}: {parts}."
        )
    first, latest = s["busiest_first_whole_year"], s["busiest_last_whole_year"]
    if first and latest:
        lines.append(
            f"Busiest area: {first['group']} in {first['year']} ({100 * first['share']:.0f} %), "
            f"{latest['group']} in {latest['year']} ({100 * latest['share']:.0f} %)."
        )
    if s["no_peak"]:
        parts = ", ".join(f"{g} ({r})" for g, r in s["no_peak"].items())
        lines.append(f"No peak month for: {parts}.")
    return lines


def _counts_plots(a: CountsAnalysis, top: int = 6) -> list[str]:
    wide = a.wide
    order = [g for g in wide.sum().sort_values(ascending=False).index if g in a.seasonality]
    plots = []
    fig, ax = new_figure(8.0, 3.4)
    start = a.basis.start_month
    months = [(start - 1 + i) % 12 + 1 for i in range(12)]  # in the order of the year
    shown = [g for g in order if a.seasonality[str(g)]["peak_month"] is not None][:top]
    for g in shown:
        prof = a.seasonality[str(g)]["monthly_profile"]
        ax.plot(range(12), [prof[MONTH_NAMES[m - 1]] for m in months], marker="o", label=str(g))
    ax.axhline(1.0, color="#999", lw=0.8)
    ax.set_xticks(range(12), [MONTH_NAMES[m - 1] for m in months])
    ax.set_ylabel("ratio to the yearly mean")
    ax.set_title(f"Monthly profile ({'fiscal' if a.basis.fiscal else 'calendar'} years)")
    if shown:
        ax.legend(fontsize=8, ncol=2)
    plots.append(png_img(fig))

    fig, ax = new_figure(8.0, 3.4)
    for g in order[:top]:
        levels = a.seasonality[str(g)]["per_month_by_year"]
        if levels:
            ax.step(range(len(levels)), list(levels.values()), where="mid", label=str(g))
            labels = list(levels)
    if order[:top] and a.seasonality[str(order[0])]["per_month_by_year"]:
        step = max(1, len(labels) // 10)
        ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45)
        ax.legend(fontsize=8, ncol=2)
    ax.set_ylabel("mean per month")
    ax.set_title("Yearly level (whole years)")
    plots.append(png_img(fig))

    fig, ax = new_figure(8.0, 3.0)
    b = a.busiest
    groups = list(dict.fromkeys(b["busiest"]))
    colours = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    ax.bar(
        b["label"],
        b["share"] * 100,
        color=[colours[g] for g in b["busiest"]],
        hatch=["//" if p else "" for p in b["partial"]],
        alpha=0.9,
    )
    for g in groups:
        ax.bar([], [], color=colours[g], label=g)
    if b["partial"].any():
        ax.bar([], [], color="white", edgecolor="#333", hatch="//", label="partial year")
    ax.tick_params(axis="x", rotation=45)
    ax.set_ylabel("% of the year's total")
    ax.set_title("Busiest area each year")
    ax.legend(fontsize=8)
    plots.append(png_img(fig))
    return plots


def _areas_table(a: CountsAnalysis) -> pd.DataFrame:
    last = a.summary["whole_years"][-1] if a.summary["whole_years"] else None
    recent: dict[str, list[str]] = {}
    for c in sorted(recent_changes(a), key=lambda c: c["year"]):
        recent.setdefault(c["group"], []).append(f"{c['label']} ×{c['ratio']:.2f}")
    groups = a.summary.get("subtotals") or {}
    border = {g: b for b, v in groups.items() for g in v["areas"]}
    rows = []
    for g, v in a.seasonality.items():
        row = {"area": g}
        if border:
            row["border"] = border.get(g, "")
        row |= {
            "total": v["total"],
            "peak": v["peak_month"] or "–",
            "peak ratio": v["peak_ratio"],
            "trough": v["trough_month"] or "–",
            "trough ratio": v["trough_ratio"],
            "long-run trend": v["trend"].get("direction"),
            "trend %/yr": v["trend"].get("percent_per_year"),
            f"{last} per month": v["per_month_by_year"].get(last) if last else None,
            f"changes, last {RECENT_YEARS} years": ", ".join(recent.get(g, [])) or "–",
        }
        rows.append(row)
    return pd.DataFrame(rows).sort_values("total", ascending=False)


def _counts_map(a: CountsAnalysis) -> tuple[object, str]:
    """The map of the areas with a known place, and one sentence saying what it shows."""
    import folium

    m = offline_map((37.0, -98.0), zoom_start=4)  # the boundary lines, for orientation
    known, unknown = area_places(a.wide.columns)
    if not known:
        return m, (
            "The map shows the boundary lines only: no place is known for any of these areas."
        )
    s = a.summary
    last = s["whole_years"][-1] if s["whole_years"] else None
    layer = folium.FeatureGroup(name="counts by area", show=True)
    top = max(float(a.wide[g].sum()) for g in known) or 1.0
    for g, (lat, lon) in known.items():
        v = a.seasonality[g]
        total = float(a.wide[g].sum())
        recent = v["per_month_by_year"].get(last) if last else None
        label = f"{g}: {int(total):,} in all" + (
            f"; {last} {recent:,.0f} a month" if recent is not None else ""
        )
        folium.CircleMarker(
            (lat, lon),
            radius=4 + 26 * np.sqrt(total / top),
            color="#b2182b",
            weight=1,
            fill=True,
            fill_opacity=0.45,
            tooltip=label,
        ).add_to(layer)
        folium.Marker(
            (lat, lon),
            icon=folium.DivIcon(
                html=f'<div style="font:11px sans-serif;white-space:nowrap;'
                f'text-shadow:0 0 2px #fff">{html.escape(g)}</div>',
                icon_anchor=(-6, 6),
            ),
        ).add_to(layer)
    layer.add_to(m)
    lats = [p[0] for p in known.values()]
    lons = [p[1] for p in known.values()]
    m.fit_bounds([[min(lats) - 1, min(lons) - 2], [max(lats) + 1, max(lons) + 2]])
    note = (
        "The map places each area's total at its headquarters town (circle area ∝ total; "
        "a place, not the area's boundary)"
    )
    if unknown:
        note += f"; no place is known for {', '.join(unknown)}"
    return m, note + "."


def write_counts_report(a: CountsAnalysis, out_dir: str | Path, *, title: str) -> dict[str, Path]:
    """Write ``report.html`` and ``seasonality.json`` for a counts analysis."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seasonality_path = out / "seasonality.json"
    write_json(seasonality_path, a.seasonality)
    m, map_note = _counts_map(a)
    lines = [*counts_sentences(a), map_note]
    head = f"<h1>{html.escape(title)}</h1><ul>" + "".join(
        f"<li>{html.escape(x)}</li>" for x in lines
    )
    body = [
        '<div class="plots">' + "".join(_counts_plots(a)) + "</div>",
        "<h2>Areas</h2>",
        html_table(_areas_table(a), 60),
        "<h2>Busiest area by year</h2>",
        html_table(a.busiest, 60),
    ]
    report = report_page(m, title, head + "</ul>", "\n".join(body))
    return {"report": report(out / "report.html"), "seasonality": seasonality_path}
