"""The planners' report page: colours, matplotlib figures as inline PNG, tables, the page
around the folium map, and the JSON files written beside it (:mod:`vigil.maps.report`)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vigil.ingest.jsonable import dumps
from vigil.maps.offline import save_offline

HOT_COLOUR, COLD_COLOUR = "#b2182b", "#2166ac"


def colour_scale(values: np.ndarray, cmap: str = "YlOrRd") -> list[str]:
    """One hex colour per value, from light (0) to full (the largest) on ``cmap``."""
    import matplotlib
    from matplotlib.colors import to_hex

    v = np.asarray(values, dtype=np.float64)
    top = float(v.max()) if v.size and v.max() > 0 else 1.0
    colours = matplotlib.colormaps[cmap](0.15 + 0.85 * v / top)
    return [to_hex(c) for c in colours]


def png_img(fig) -> str:
    """``fig`` as an ``<img>`` with its PNG in a data URI (the page needs no network); closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{data}">'


def new_figure(width: float = 7.5, height: float = 3.0):
    """A matplotlib figure and axes on the Agg backend; size in inches."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def table_cell(value: Any) -> str:
    """A number as a person reads it: whole numbers with thousands separators (5,020,488,
    not 5.02e+06), other numbers to three significant digits, missing values as a dash."""
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if v.is_integer() or abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}"
    return str(value)


def html_table(df: pd.DataFrame, max_rows: int = 15) -> str:
    """The first ``max_rows`` rows of ``df`` as an HTML table of escaped :func:`table_cell` text."""
    shown = df.head(max_rows).astype(object).map(table_cell)
    return shown.to_html(index=False, border=0, escape=True)


_CSS = """<style>
html, body {height: auto !important; margin: 0; font: 14px/1.45 sans-serif; color: #222;}
body {display: flex; flex-direction: column;}
.report-head {order: 0;} .folium-map {order: 1;} .report {order: 2;}
.folium-map {position: relative !important; height: 560px !important; width: 100% !important;}
.report, .report-head {max-width: 1100px; width: 100%; margin: 0 auto; padding: 8px 18px;}
.report img.plot {max-width: 100%; margin: 6px 8px 6px 0;}
.report table {border-collapse: collapse; margin: 6px 0 18px;}
.report td, .report th {padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right;}
</style>"""


def report_page(m, name: str, head: str, body: str):
    """A writer for the page: title and summary, then the map, then plots and tables."""
    import folium

    root = m.get_root()
    root.header.add_child(folium.Element(f"<title>{html.escape(name)}</title>"), name="title")
    root.header.add_child(folium.Element(_CSS), name="report_css")
    root.html.add_child(folium.Element(f'<div class="report-head">{head}</div>'), name="head")
    root.html.add_child(folium.Element(f'<div class="report">{body}</div>'), name="report")
    return lambda path: save_offline(m, path)


def _drop_tables(value: Any) -> Any:
    # a Series or DataFrame left in a summary is written as null, not as its values
    return None if isinstance(value, pd.Series | pd.DataFrame) else value


def write_json(path: Path, data: dict) -> dict:
    """Write ``data`` as JSON and return it as read back (string keys, nulls for NaN)."""
    text = dumps(data, indent=2, default=_drop_tables)
    path.write_text(text, encoding="utf-8")
    return json.loads(text)
