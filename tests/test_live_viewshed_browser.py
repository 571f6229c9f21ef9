"""The live map draws viewshed coverage in headless Chromium (issue 21): with synthetic relief
in ``[terrain]`` each tower's coverage layer is its camera's view on the relief, polygons,
rings and holes as the server sent them, named "viewshed coverage" in the layer menu; a camera
command re-draws it; no JavaScript error. Without terrain, the flat wedges under "fields of
view" as before. (What the coverage leaves out behind a ridge: tests/test_live_viewshed.py.)"""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

import browser_checks  # noqa: E402
from test_live_browser import PASSWORDS, Scenario, login, wait_live  # noqa: E402

from vigil.config import default_deployment_path, load  # noqa: E402
from vigil.ingest.schema import CameraCommand  # noqa: E402
from vigil.maps.live.coverage import live_relief  # noqa: E402

pytestmark = pytest.mark.browser

checked_page = browser_checks.checked_page

TOWER = "t03"

#: Per tower: [polygons, rings, points] of its coverage layer as Leaflet holds it.
SHAPES = """() => Object.fromEntries(Object.entries(VigilLive.towers).map(([id, t]) => {
  const ll = t.fov.getLatLngs();
  const multi = ll.length > 0 && Array.isArray(ll[0][0]);
  const polys = multi ? ll : [ll];
  const rings = polys.reduce((n, p) => n + (Array.isArray(p[0]) ? p.length : 1), 0);
  return [id, [polys.length, rings, polys.flat(2).length]];
}))"""


def overlay_names(page) -> list[str]:
    return page.eval_on_selector_all(
        ".leaflet-control-layers-overlays label", "els => els.map(e => e.textContent.trim())"
    )


def sent_shapes(view: dict) -> list[int]:
    polys = view["coverage"]["coordinates"]
    rings = sum(len(p) for p in polys)
    # Leaflet drops a polygon ring's closing point
    return [len(polys), rings, sum(len(r) - 1 for p in polys for r in p)]


def test_the_map_draws_viewshed_coverage(tmp_path, checked_page) -> None:
    path = tmp_path / "sector.toml"
    text = default_deployment_path().read_text(encoding="utf-8")
    path.write_text(text + "\n[terrain]\nsynthetic = { seed = 2 }\n", encoding="utf-8")
    d = load(path)
    dem = live_relief(d.config.terrain, d.site, d.path.parent)
    s = Scenario(tmp_path, site=d.site, dem=dem)
    try:
        page = checked_page.page
        login(page, s.server.url, "cmd", PASSWORDS["cmd"])
        wait_live(page)
        assert "viewshed coverage" in overlay_names(page)
        assert "fields of view" not in overlay_names(page)
        views = {t["id"]: t for t in s.app.live.snapshot()["towers"]}
        for tower_id in views:
            page.wait_for_selector(
                f'.vigil-fov[data-tower-id="{tower_id}"][data-coverage="viewshed"]',
                state="attached",
            )
        drawn = page.evaluate(SHAPES)
        assert drawn == {tid: sent_shapes(v) for tid, v in views.items()}
        # hills cut the views into several polygons, washes and hollows make holes in them
        assert sum(n[0] for n in drawn.values()) > len(drawn)
        assert sum(n[1] for n in drawn.values()) > sum(n[0] for n in drawn.values())
        path = page.get_attribute(f'.vigil-fov[data-tower-id="{TOWER}"]', "d")
        assert path and path.count("M") >= 1
        tip = page.evaluate(
            "id => { const f = VigilLive.towers[id].fov; f.openTooltip(f.getBounds().getCenter());"
            " const t = f.getTooltip().getElement().textContent; f.closeTooltip(); return t; }",
            TOWER,
        )
        assert tip == f"tower {TOWER}: what it sees on the relief (viewshed)"

        # the camera turns north: the layer follows, still on the relief
        s.publish(CameraCommand(camera=TOWER, time=s.t0, pan_deg=10.0, tilt_deg=1.5))
        page.wait_for_selector(
            f'.vigil-fov[data-tower-id="{TOWER}"][data-pan="10.0"][data-coverage="viewshed"]',
            state="attached",
        )
        turned = next(t for t in s.app.live.snapshot()["towers"] if t["id"] == TOWER)
        assert page.evaluate(SHAPES)[TOWER] == sent_shapes(turned)
    finally:
        s.close()


def test_without_terrain_the_map_draws_wedges(tmp_path, checked_page) -> None:
    s = Scenario(tmp_path)
    try:
        page = checked_page.page
        login(page, s.server.url, "cmd", PASSWORDS["cmd"])
        wait_live(page)
        assert "fields of view" in overlay_names(page)
        assert "viewshed coverage" not in overlay_names(page)
        for t in s.app.live.snapshot()["towers"]:
            page.wait_for_selector(
                f'.vigil-fov[data-tower-id="{t["id"]}"][data-coverage="wedge"]', state="attached"
            )
            n = page.evaluate("id => VigilLive.towers[id].fov.getLatLngs()[0].length", t["id"])
            assert n == len(t["fov"]) - 1  # the wedge's ring as sent, less its closing point
    finally:
        s.close()
