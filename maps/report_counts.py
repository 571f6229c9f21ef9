"""The planners' counts report (:func:`vigil.maps.report.analyze_counts`): monthly profiles, STL
trends and the busiest area each year, as plots and tables, and ``seasonality.json``."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.geo.patterns.analysis import CountsAnalysis
from vigil.geo.patterns.seasonality import MONTH_NAMES, stl_trend
from vigil.maps.offline import offline_map
from vigil.maps.report_page import html_table, new_figure, png_img, report_page, write_json


def _counts_plots(a: CountsAnalysis, top: int = 6) -> list[str]:
    wide = a.wide
    order = wide.sum().sort_values(ascending=False).index[:top]
    plots = []
    fig, ax = new_figure(8.0, 3.4)
    months = np.arange(1, 13)
    for g in order:
        prof = a.seasonality[str(g)]["monthly_profile"]
        ax.plot(months, [prof[MONTH_NAMES[i - 1]] for i in months], marker="o", label=str(g))
    ax.axhline(1.0, color="#999", lw=0.8)
    ax.set_xticks(months, MONTH_NAMES)
    ax.set_ylabel("ratio to the yearly mean")
    ax.set_title("Monthly profile")
    ax.legend(fontsize=8, ncol=2)
    plots.append(png_img(fig))

    fig, ax = new_figure(8.0, 3.4)
    for g in order:
        s = wide[g]
        (line,) = ax.plot(s.index, s.to_numpy(), lw=0.6, alpha=0.6)
        tr = stl_trend(s, period=12).get("trend")
        if isinstance(tr, pd.Series):
            ax.plot(tr.index, tr.to_numpy(), lw=2, color=line.get_color(), label=str(g))
    ax.set_ylabel("per month")
    ax.set_title("Monthly counts and STL trend")
    ax.legend(fontsize=8, ncol=2)
    plots.append(png_img(fig))

    fig, ax = new_figure(8.0, 3.0)
    b = a.busiest
    groups = list(dict.fromkeys(b["busiest"]))
    colours = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    ax.bar(b["year"], b["share"] * 100, color=[colours[g] for g in b["busiest"]])
    for g in groups:
        ax.bar([], [], color=colours[g], label=g)
    ax.set_ylabel("% of the year's total")
    ax.set_title("Busiest area each year")
    ax.legend(fontsize=8)
    plots.append(png_img(fig))
    return plots


def write_counts_report(a: CountsAnalysis, out_dir: str | Path, *, title: str) -> dict[str, Path]:
    """Write ``report.html`` and ``seasonality.json`` for a counts analysis."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seasonality_path = out / "seasonality.json"
    write_json(seasonality_path, a.seasonality)
    s = a.summary
    lines = [
        f"{len(s['groups'])} areas, {s['months']} months from {s['first_month']} to "
        f"{s['last_month']}, {s['total']:,.0f} in all.",
        f"All areas together peak in {s['all']['peak_month']} and are lowest in "
        f"{s['all']['trough_month']}; the trend is {s['all']['trend'].get('direction')}.",
    ]
    years = sorted(s["busiest_by_year"])
    if years:
        first, last = s["busiest_by_year"][years[0]], s["busiest_by_year"][years[-1]]
        lines.append(
            f"Busiest area: {first['group']} in {years[0]}, {last['group']} in {years[-1]}."
        )
    table = pd.DataFrame(
        [
            {
                "area": g,
                "total": v["total"],
                "peak": v["peak_month"],
                "peak ratio": v["peak_ratio"],
                "trough": v["trough_month"],
                "trough ratio": v["trough_ratio"],
                "trend %/yr": v["trend"].get("percent_per_year"),
                "trend": v["trend"].get("direction"),
            }
            for g, v in a.seasonality.items()
        ]
    ).sort_values("total", ascending=False)
    head = f"<h1>{html.escape(title)}</h1><ul>" + "".join(
        f"<li>{html.escape(x)}</li>" for x in lines
    )
    body = "\n".join(
        [
            '<div class="plots">' + "".join(_counts_plots(a)) + "</div>",
            "<h2>Seasonality by area</h2>",
            html_table(table, 50),
            "<h2>Busiest area by year</h2>",
            html_table(a.busiest, 60),
        ]
    )
    m = offline_map((39.0, -98.0), zoom_start=4)  # the boundary lines, for orientation
    report = report_page(m, title, head + "</ul>", body)
    return {"report": report(out / "report.html"), "seasonality": seasonality_path}
