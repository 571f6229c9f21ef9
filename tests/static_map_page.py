"""Reading a static (folium) map in headless Chromium: page errors, the layer control's layers
and what each of them draws (used by tests/test_static_maps_browser.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_CONTROL = re.compile(r"let (layer_control_[0-9a-f]+) = L\.control\.layers\(")

# For every layer in the control: its name, whether it is on the map, its leaf layers, the
# leaves whose SVG path or icon is in the document, and the vigil-* CSS classes drawn.
_LAYERS_JS = """(ctl) => ctl._layers.map(e => {
  const leaves = [];
  const walk = (l) => {
    if (l.getLayers) { l.getLayers().forEach(walk); } else { leaves.push(l); }
  };
  walk(e.layer);
  const element = (l) => l._path || l._icon || null;
  const drawn = leaves.filter(l => element(l) && document.body.contains(element(l)));
  const classes = {};
  for (const l of drawn) {
    const el = element(l);
    const names = [el.getAttribute('class') || ''];
    if (el.firstElementChild) { names.push(el.firstElementChild.getAttribute('class') || ''); }
    const seen = new Set(names.join(' ').split(/\\s+/).filter(c => /^vigil-[a-z-]+$/.test(c)
      && !c.endsWith('-icon')));
    for (const c of seen) { classes[c] = (classes[c] || 0) + 1; }
  }
  return {name: e.name, overlay: e.overlay, on: !!e.layer._map, leaves: leaves.length,
          drawn: drawn.length, classes: classes};
})"""


@dataclass
class MapLayer:
    """One entry of the layer control, as the browser drew it."""

    name: str
    overlay: bool
    on: bool
    leaves: int
    drawn: int
    classes: dict[str, int] = field(default_factory=dict)


def watch_page_errors(offline_page) -> list[str]:
    """Collect uncaught exceptions (``pageerror``) of the page from now on."""
    errors: list[str] = []
    offline_page.page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def open_map(offline_page, path: Path) -> list[str]:
    """Open a saved map; return the list that collects its uncaught exceptions."""
    errors = watch_page_errors(offline_page)
    page = offline_page.page
    page.goto(path.resolve().as_uri())
    page.wait_for_selector(".leaflet-pane", state="attached", timeout=20_000)
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    return errors


def control_layers(offline_page, path: Path, *, switch_on: bool = True) -> dict[str, MapLayer]:
    """The layer control's layers by name, after switching every hidden overlay on."""
    names = _CONTROL.findall(path.read_text(encoding="utf-8"))
    assert len(names) == 1, f"expected one layer control in {path.name}, found {names}"
    page = offline_page.page
    assert page.locator(".leaflet-control-layers").count() == 1, "no layer menu on the page"
    if switch_on:
        labels = page.locator(".leaflet-control-layers-overlays label")
        page.evaluate(
            "document.querySelector('.leaflet-control-layers').classList"
            ".add('leaflet-control-layers-expanded')"
        )
        for i in range(labels.count()):
            box = labels.nth(i).locator("input")
            if not box.is_checked():
                box.check()
    raw = page.evaluate(f"({_LAYERS_JS})({names[0]})")
    menu = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    layers = {r["name"]: MapLayer(**r) for r in raw}
    assert sorted(n.strip() for n in menu) == sorted(layers), (menu, sorted(layers))
    return layers
