/* Vigil national view: every sector's border line and its open alerts, and a picker.
 *
 * The page's options (sectors: id, centre, border line; base: the boundary GeoJSON) are in a
 * <script type="application/json" id="vigil-national-options"> block, read with textContent.
 * The counts come from /api/sectors every POLL_MS. Every text goes in through textContent (or
 * a DOM node for Leaflet tooltips, which would put a string into innerHTML); a sector id goes
 * into a URL only through encodeURIComponent.
 */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var N = (window.VigilNational = { map: null, sectors: {}, polls: 0, last: null });

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function sectorUrl(id) { return "/s/" + encodeURIComponent(id) + "/"; }

  function label(id) {
    var s = N.sectors[id];
    var open = s && s.counts ? s.counts.open : 0;
    return id + ": " + open + " open alert" + (open === 1 ? "" : "s");
  }

  function addSector(map, s) {
    var entry = { info: s, counts: null, line: null, marker: null, row: null };
    N.sectors[s.id] = entry;
    if (s.line && s.line.length > 1) {
      entry.line = L.polyline(s.line, { color: "#b2182b", weight: 4 }).addTo(map);
      entry.line.on("click", function () { window.location.href = sectorUrl(s.id); });
    }
    entry.marker = L.circleMarker(s.centre, { radius: 9, color: "#b2182b", weight: 2,
      fillOpacity: 0.4 }).addTo(map);
    entry.tip = el("span", "vigil-tip", label(s.id));
    entry.marker.bindTooltip(entry.tip, { permanent: true, direction: "top" });
    entry.marker.on("click", function () { window.location.href = sectorUrl(s.id); });
    var e = entry.marker.getElement && entry.marker.getElement();
    if (e) e.setAttribute("data-sector", s.id);

    var row = el("tr");
    row.setAttribute("data-sector", s.id);
    var name = el("td");
    var a = el("a", "sector-link", s.id);
    a.href = sectorUrl(s.id);
    name.appendChild(a);
    row.appendChild(name);
    entry.openCell = el("td", "sector-open", "0");
    entry.seenCell = el("td", "sector-seen", "0");
    row.appendChild(entry.openCell);
    row.appendChild(entry.seenCell);
    $("sector-rows").appendChild(row);
    entry.row = row;

    var opt = el("option", null, s.id);
    opt.value = s.id;
    $("sector-picker").appendChild(opt);
  }

  function update(body) {
    N.polls++;
    N.last = body;
    if (body.csrf) $("logout-csrf").value = body.csrf;
    var total = 0;
    (body.sectors || []).forEach(function (c) {
      var entry = N.sectors[c.id];
      if (!entry) return;
      entry.counts = c;
      total += c.open;
      entry.openCell.textContent = String(c.open);
      entry.seenCell.textContent = String(c.seen);
      entry.row.setAttribute("data-open", String(c.open));
      entry.tip.textContent = label(c.id);
    });
    $("national-open").textContent = String(total);
    document.body.setAttribute("data-polls", String(N.polls));
  }

  function poll() {
    fetch("/api/sectors", { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) {
        window.location.href = "/login";
        throw new Error("not logged in");
      }
      if (!r.ok) throw new Error("/api/sectors: HTTP " + r.status);
      return r.json();
    }).then(update).catch(function () { /* the next poll tries again */ })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  function boot() {
    var node = $("vigil-national-options");
    if (!node) return;
    var o = JSON.parse(node.textContent);
    var pts = [];
    (o.sectors || []).forEach(function (s) {
      pts.push(s.centre);
      (s.line || []).forEach(function (p) { pts.push(p); });
    });
    // the view first: Leaflet draws a layer only on a map that has one
    var map = L.map("vigil-map", { zoomControl: true, center: pts[0] || [39, -98], zoom: 5 });
    N.map = map;
    if (pts.length) map.fitBounds(L.latLngBounds(pts).pad(0.3), { animate: false });
    L.control.scale().addTo(map);
    (o.base || []).forEach(function (fc) {
      L.geoJSON(fc, {
        style: function () { return { color: "#555", weight: 1.5, dashArray: "4 3" }; },
        interactive: false,
      }).addTo(map);
    });
    (o.sectors || []).forEach(function (s) { addSector(map, s); });
    $("sector-picker").addEventListener("change", function (e) {
      if (e.target.value) window.location.href = sectorUrl(e.target.value);
    });
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
