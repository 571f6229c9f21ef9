"""What makes a static map readable without hovering: a title, a legend, the names of the
countries on either side of the border, labels that appear as the user zooms in, and popups.

Every text that reaches the page is escaped here (names from deployment files, GeoNames or the
wire are data, never markup).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import folium
import numpy as np
from folium.template import Template

from vigil.geo.border import Border

FOREIGN = {"us_mx": "MEXICO", "us_ca": "CANADA"}
# the zoom below which a label class is hidden (Leaflet zoom levels)
LABEL_ZOOM = {"tower": 11, "unit": 12, "segment": 13, "sensor": 14, "place-rank2": 10,
              "place-rank3": 12}  # fmt: skip

CSS = """<style>
.vigil-title{position:absolute;top:8px;left:50%;transform:translateX(-50%);z-index:800;
 background:rgba(255,255,255,.9);padding:4px 12px;border-radius:4px;font:600 15px sans-serif;
 color:#222;box-shadow:0 1px 4px rgba(0,0,0,.3);text-align:center;pointer-events:auto}
.vigil-title small{display:block;font-weight:400;font-size:12px;color:#444}
.vigil-legend{background:rgba(255,255,255,.92);padding:6px 9px;border-radius:4px;
 font:12px/1.5 sans-serif;color:#222;box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:260px}
.vigil-legend summary{cursor:pointer;margin-bottom:2px}
.vigil-legend-entry{display:flex;align-items:center;gap:6px;white-space:nowrap}
.vigil-swatch{display:inline-block;width:22px;height:12px;flex:none}
.vigil-swatch-line{height:0;border-top:4px solid}
.vigil-swatch-dash{height:0;border-top:3px dashed}
.vigil-swatch-dot{width:11px;height:11px;border-radius:50%;border:2px solid #fff;
 box-shadow:0 0 2px #000;margin:0 4px}
.vigil-swatch-area{opacity:.6;border:1px solid}
.vigil-swatch-ring{width:11px;height:11px;border-radius:50%;border:2px solid;margin:0 4px}
.vigil-country{font:700 18px sans-serif;letter-spacing:.35em;color:rgba(60,60,60,.55);
 white-space:nowrap;text-shadow:0 0 3px #fff;pointer-events:none}
.vigil-label{font:600 11px sans-serif;color:#123;white-space:nowrap;text-shadow:
 0 0 2px #fff,0 0 2px #fff,0 0 3px #fff;pointer-events:none}
.vigil-place{font:11px sans-serif;color:#333;white-space:nowrap;text-shadow:0 0 2px #fff,
 0 0 3px #fff}
.vigil-place-dot{display:inline-block;width:6px;height:6px;border-radius:50%;background:#555;
 border:1px solid #fff;margin-right:3px;vertical-align:middle}
.vigil-place-rank1{font-weight:700;font-size:12px}
"""


def _zoom_css() -> str:
    rules = []
    for name, zoom in LABEL_ZOOM.items():
        if name.startswith("place-"):
            target = f".vigil-{name} .vigil-place-name"
        else:
            target = f".vigil-label-{name}"
        rules.append(f".vigil-zoom-lt{zoom} {target}{{display:none}}")
    return "\n".join(rules) + "\n</style>"


class _MapScript(folium.MacroElement):
    """A script run once the map exists (``map`` is the Leaflet map)."""

    _template = Template(
        """{% macro script(this, kwargs) %}
(function (map) { {{ this.body }} })({{ this._parent.get_name() }});
{% endmacro %}"""
    )

    def __init__(self, body: str) -> None:
        super().__init__()
        self._name = "VigilScript"
        self.body = body


_ZOOM_JS = """
var zooms = %s;
function update() {
  var z = map.getZoom(), box = map.getContainer().classList;
  zooms.forEach(function (k) { box.toggle('vigil-zoom-lt' + k, z < k); });
}
map.on('zoomend', update); update();
"""


def add_cartography_css(m: folium.Map) -> None:
    """The style of titles, legends and labels, and the zoom classes that show labels."""
    root = m.get_root()
    root.header.add_child(folium.Element(CSS + _zoom_css()), name="vigil_cartography_css")
    zooms = sorted(set(LABEL_ZOOM.values()))
    _MapScript(_ZOOM_JS % zooms).add_to(m)


def add_attribution(m: folium.Map, text: str) -> None:
    """Credit a data source in the map's attribution line (text, escaped)."""
    _MapScript(
        f"if (map.attributionControl) {{ map.attributionControl.addAttribution("
        f"{json.dumps(html.escape(text))}); }}"
    ).add_to(m)


class MapTitle(folium.MacroElement):
    """A title (and an optional subtitle) centred at the top of the map."""

    _template = Template(
        """{% macro script(this, kwargs) %}
(function (map) {
  var div = L.DomUtil.create('div', 'vigil-title', map.getContainer());
  div.innerHTML = {{ this.html|tojson }};
  L.DomEvent.disableClickPropagation(div);
})({{ this._parent.get_name() }});
{% endmacro %}"""
    )

    def __init__(self, title: str, subtitle: str = "") -> None:
        super().__init__()
        self._name = "VigilTitle"
        self.title = title
        self.subtitle = subtitle

    @property
    def html(self) -> str:
        """The title's escaped HTML."""
        sub = f"<small>{html.escape(self.subtitle)}</small>" if self.subtitle else ""
        return html.escape(self.title) + sub


@dataclass(frozen=True)
class LegendEntry:
    """One line of a legend: ``kind`` is line, dash, dot, ring or area; ``colour`` CSS."""

    kind: str
    colour: str
    label: str

    def html(self) -> str:
        """The entry's escaped HTML."""
        c = html.escape(self.colour)
        style = {
            "line": f"border-top-color:{c}",
            "dash": f"border-top-color:{c}",
            "dot": f"background:{c}",
            "ring": f"border-color:{c}",
            "area": f"background:{c};border-color:{c}",
        }[self.kind]
        return (
            f'<div class="vigil-legend-entry"><span class="vigil-swatch vigil-swatch-{self.kind}"'
            f' style="{style}"></span>{html.escape(self.label)}</div>'
        )


class MapLegend(folium.MacroElement):
    """A legend in a corner of the map; entries may be added until the page is rendered."""

    _template = Template(
        """{% macro script(this, kwargs) %}
(function (map) {
  var legend = L.control({position: {{ this.position|tojson }}});
  legend.onAdd = function () {
    var div = L.DomUtil.create('div', 'vigil-legend');
    div.innerHTML = {{ this.html|tojson }};
    L.DomEvent.disableClickPropagation(div);
    return div;
  };
  legend.addTo(map);
})({{ this._parent.get_name() }});
{% endmacro %}"""
    )

    def __init__(self, title: str = "Legend", position: str = "bottomleft") -> None:
        super().__init__()
        self._name = "VigilLegend"
        self.title = title
        self.position = position
        self.entries: list[LegendEntry] = []

    def add(self, kind: str, colour: str, label: str) -> MapLegend:
        """Add an entry (once: an equal entry is not repeated)."""
        entry = LegendEntry(kind, colour, label)
        if entry not in self.entries:
            self.entries.append(entry)
        return self

    @property
    def html(self) -> str:
        """The legend's escaped HTML."""
        entries = "".join(e.html() for e in self.entries)
        head = f"<summary><b>{html.escape(self.title)}</b></summary>"
        return f"<details open>{head}{entries}</details>"


def legend_of(m: folium.Map) -> MapLegend:
    """The map's legend, added on first use."""
    for child in m._children.values():
        if isinstance(child, MapLegend):
            return child
    legend = MapLegend()
    legend.add_to(m)
    return legend


def title_of(m: folium.Map) -> MapTitle | None:
    """The map's title element, if it has one."""
    return next((c for c in m._children.values() if isinstance(c, MapTitle)), None)


def tip(text: str) -> str:
    """``text`` escaped for a folium tooltip: HTML-escaped, and safe inside the JavaScript
    template literal folium writes it into (backticks, ``${`` and backslashes)."""
    escaped = html.escape(str(text))
    return escaped.replace("\\", "&#92;").replace("`", "&#96;").replace("$", "&#36;")


def add_label(group, lat: float, lon: float, text: str, kind: str) -> None:
    """A text label beside a point that shows from the zoom :data:`LABEL_ZOOM` gives ``kind``."""
    folium.Marker(
        (float(lat), float(lon)),
        icon=folium.DivIcon(
            html=f'<div class="vigil-label vigil-label-{kind}">{html.escape(text)}</div>',
            icon_size=(120, 14),
            icon_anchor=(-9, 7),
            class_name="vigil-label-icon",
        ),
        interactive=False,
    ).add_to(group)


class TextPopup(folium.Popup):
    """A click popup from an HTML string the caller has escaped.

    folium's own popup parses its content with jQuery, which the offline pages do not load;
    this one hands the string to Leaflet's ``setContent``.
    """

    _template = Template(
        """
        var {{ this.get_name() }} = L.popup({{ this.options|tojavascript }});
        {{ this.get_name() }}.setContent({{ this.content|tojson }});
        {{ this._parent.get_name() }}.bindPopup({{ this.get_name() }});
    """
    )

    def __init__(self, content: str, max_width: int = 320) -> None:
        super().__init__(max_width=max_width)
        self.content = content


def popup(title: str, rows: list[tuple[str, str]]) -> TextPopup:
    """A click popup: a bold title and ``name: value`` lines, all escaped."""
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:8px'>{html.escape(k)}</th>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return TextPopup(f"<b>{html.escape(title)}</b><table>{body}</table>")


def local_time(epoch_s: float | None, timezone: str) -> str:
    """``epoch_s`` (UTC seconds) as local date-time with its offset, e.g.
    ``2026-03-01 02:14:05 -07:00 (America/Phoenix)``; ``"?"`` when missing."""
    if epoch_s is None or not np.isfinite(epoch_s):
        return "?"
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        tz, timezone = ZoneInfo("UTC"), "UTC"
    t = datetime.fromtimestamp(float(epoch_s), UTC).astimezone(tz)
    offset = t.isoformat()[-6:]  # "+HH:MM" (strftime's %:z needs Python 3.12)
    return t.strftime("%Y-%m-%d %H:%M:%S ") + offset + f" ({timezone})"


def local_span(first_s: float, last_s: float, timezone: str) -> str:
    """A time span in local time, the date and zone said once when they are shared:
    ``2026-06-01 02:00:00–02:49:10 -07:00 (America/Phoenix)``."""
    a, b = local_time(first_s, timezone), local_time(last_s, timezone)
    if a[:10] == b[:10] and a[19:] == b[19:]:
        return f"{a[:19]}–{b[11:]}"
    return f"{a} – {b}"


def country_label_points(border: Border, offset_m: float | None = None) -> dict[str, tuple]:
    """Where to write the two country names: beside the middle of the sector's stretch of
    border, ``offset_m`` metres (default 10 % of the stretch, 1.5–15 km) into each country.

    Returns ``{"UNITED STATES": (lat, lon), "MEXICO" or "CANADA": (lat, lon)}``, degrees.
    """
    line = border.line
    length = float(line.length)
    d = offset_m if offset_m is not None else min(15_000.0, max(1_500.0, 0.1 * length))
    a = np.asarray(line.interpolate(0.45 * length).coords[0])
    b = np.asarray(line.interpolate(0.55 * length).coords[0])
    mid = np.asarray(line.interpolate(0.5 * length).coords[0])
    tangent = (b - a) / max(float(np.hypot(*(b - a))), 1e-9)
    right = np.array([tangent[1], -tangent[0]])  # the US lies on the right of the line
    points = {}
    for name, sign in (("UNITED STATES", 1.0), (FOREIGN.get(border.boundary, "FOREIGN"), -1.0)):
        x, y = mid + sign * d * right
        lat, lon = border.frame.to_wgs84(x, y)
        points[name] = (float(lat), float(lon))
    return points


def add_country_labels(m: folium.Map, border: Border) -> dict[str, tuple]:
    """Write the country names on either side of the border (not a layer: always shown)."""
    points = country_label_points(border)
    # a marker added straight to the map asks for Leaflet's default icon image before its
    # own icon is set; inside a group added afterwards it never does
    group = folium.FeatureGroup(name="countries", control=False)
    for name, (lat, lon) in points.items():
        folium.Marker(
            (lat, lon),
            icon=folium.DivIcon(
                html=f'<div class="vigil-country">{html.escape(name)}</div>',
                icon_size=(260, 24),
                icon_anchor=(130, 12),
                class_name="vigil-country-icon",
            ),
            interactive=False,
        ).add_to(group)
    group.add_to(m)
    return points
