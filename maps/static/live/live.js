/* Vigil live map: draws the sector from /api/site and keeps it current from the WebSocket.
 *
 * Plain JavaScript, no build step, nothing loaded from another host, no inline script: the page
 * (maps/live/page.py) carries its options in <script type="application/json"
 * id="vigil-live-options">, read here with textContent; this script builds the Leaflet map
 * and calls VigilLive.start(map, options).
 *
 * Text is text: every string from the wire or the deployment (ids, names, summaries, reasons)
 * reaches the DOM through textContent (el(), tipText()) or, where Leaflet insists on HTML
 * (the attribution), through escapeHTML(). Tooltips are given DOM nodes, never strings,
 * because Leaflet puts a string tooltip into innerHTML.
 *
 * DOM hooks (for tests and user style sheets):
 *   .vigil-track[data-track-id][data-class][data-state]   track markers (DOM, class icons);
 *     [data-label] the operator's label (person, animal, vehicle, unknown), when one is given
 *   .vigil-track-popup[data-track-id] (a track's popup, on click) with .operator-label,
 *     select.label-choice and button.label-set (roles with tracks.label), .label-error
 *   .vigil-segment[data-segment-id][data-crossings]        border segments (SVG paths)
 *   .vigil-sensor[data-sensor-id][data-state]              ground sensors (SVG circles)
 *   .vigil-tower[data-tower-id], .vigil-fov[data-tower-id][data-pan][data-coverage]
 *     (data-coverage "viewshed": what the camera sees on the relief; "wedge": flat ground)
 *   .vigil-uas[data-aircraft-id], .vigil-uas-footprint[data-aircraft-id]
 *   .vigil-unit[data-unit-id], .vigil-zone[data-zone-id]
 *   #alert-queue .alert[data-alert-id][data-state] with buttons .ack, .assign, .close
 *
 * VigilLive.stats records, per WebSocket message, the time to apply it (arrival to the end
 * of the DOM/Leaflet updates), to the next animation frame, and from the bus to applied.
 */
(function () {
  "use strict";

  // the map's own path ("/" for one sector, "/s/SECTOR/" under the national view): its API
  // and WebSocket sit below it
  var BASE = location.pathname.replace(/[^\/]*$/, "");
  var TRAIL_POINTS = 30;
  var SENSOR_STALE_S = 900;
  var STATS_CAP = 200000;
  // the labels an operator may give a track (vigil/maps/track_labels.py LABELS)
  var LABELS = ["person", "animal", "vehicle", "unknown"];
  var CLASS_COLOURS = {
    person: "#d7301f",
    vehicle: "#2166ac",
    animal: "#1a9850",
    unknown: "#636363",
  };
  var SENSOR_COLOURS = { ok: "#1a9850", degraded: "#fdae61", offline: "#878787" };
  var MODALITY_COLOURS = {
    seismic: "#8c510a",
    magnetic: "#5e3c99",
    pir: "#d7301f",
    acoustic: "#2b8cbe",
  };

  var V = (window.VigilLive = {
    map: null,
    me: null,
    now: 0,
    playing: false,
    zones: {},
    tracks: {},
    alerts: {},
    sensors: {},
    towers: {},
    uas: {},
    segments: {},
    units: {},
    labels: {},
    stats: {
      messages: 0,
      snapshots: 0,
      trackUpdates: 0,
      applyMs: [],
      frameMs: [],
      busToAppliedMs: [],
      reset: function () {
        this.messages = 0;
        this.snapshots = 0;
        this.trackUpdates = 0;
        this.applyMs = [];
        this.frameMs = [];
        this.busToAppliedMs = [];
      },
    },
  });

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  var HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  // the one escaping helper, for the few places Leaflet takes HTML (attribution)
  function escapeHTML(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return HTML_ESCAPES[c]; });
  }

  // a tooltip's content as a DOM node: Leaflet puts a string tooltip into innerHTML
  function tipText(text) {
    return el("span", "vigil-tip", text);
  }

  // bind a tooltip whose text is made by fn() each time it opens
  function tip(layer, fn) {
    return layer.bindTooltip(function () { return tipText(fn()); });
  }

  // -- time as people read it: the sector's local time with its offset ------------------
  //
  // Times on the wire are UTC seconds; every time shown is in the sector's time zone (the
  // deployment's sector.timezone, in the page's options) with its UTC offset, like
  // "2026-06-01 02:14:07 -07:00". An unknown zone falls back to UTC, said in the status.

  var TIME_ZONE = "UTC";
  var TIME_FORMAT = null;

  function timeFormat(zone) {
    return new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
      timeZoneName: "longOffset",
    });
  }

  function setTimeZone(zone) {
    try {
      TIME_FORMAT = timeFormat(zone || "UTC");
      TIME_ZONE = zone || "UTC";
    } catch (e) {
      TIME_FORMAT = timeFormat("UTC");
      TIME_ZONE = "UTC (unknown time zone " + String(zone) + ")";
    }
  }

  // UTC seconds as "YYYY-MM-DD HH:MM:SS ±HH:MM" in the sector's time zone
  function clock(t) {
    if (!t) return "–";
    if (!TIME_FORMAT) setTimeZone("UTC");
    var p = {};
    TIME_FORMAT.formatToParts(new Date(t * 1000)).forEach(function (x) { p[x.type] = x.value; });
    // "GMT-07:00" -> "-07:00"; UTC itself is written "GMT"
    var offset = (p.timeZoneName || "").replace("GMT", "").replace("\u2212", "-") || "+00:00";
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" +
      p.second + " " + offset;
  }

  function age(t) {
    if (!t) return "never";
    var s = Math.max(0, V.now - t);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    return (s / 3600).toFixed(1) + " h ago";
  }

  function can(p) {
    return V.me && V.me.permissions.indexOf(p) >= 0;
  }

  // data- attributes on a layer's element, kept across removal from and return to the map
  // (Leaflet makes a new element each time a layer is added: hidden layers, playback)
  function applyTags(layer) {
    var e = layer.getElement && layer.getElement();
    if (!e) return;
    for (var k in layer._vigilTags) e.setAttribute(k, layer._vigilTags[k]);
  }

  function tag(layer, attrs) {
    if (!layer._vigilTags) {
      layer._vigilTags = {};
      layer.on("add", function () { applyTags(layer); });
    }
    var e = layer.getElement && layer.getElement();
    for (var k in attrs) {
      var v = String(attrs[k]);
      if (layer._vigilTags[k] === v) continue;
      layer._vigilTags[k] = v;
      if (e) e.setAttribute(k, v);
    }
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) {
        window.location.href = "/login";
        throw new Error("not logged in");
      }
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return r.json();
    });
  }

  // -- layers -----------------------------------------------------------------------------

  var L_ = {};

  function buildLayers(map, site) {
    L_.trailRenderer = L.canvas({ padding: 0.3 });
    L_.segments = L.layerGroup().addTo(map);
    L_.zones = L.layerGroup().addTo(map);
    L_.ways = L.layerGroup().addTo(map);
    L_.fov = L.layerGroup().addTo(map);
    L_.towers = L.layerGroup().addTo(map);
    L_.sensors = L.layerGroup().addTo(map);
    L_.units = L.layerGroup().addTo(map);
    L_.uas = L.layerGroup().addTo(map);
    L_.trails = L.layerGroup().addTo(map);
    L_.tracks = L.layerGroup().addTo(map);
    L_.alerts = L.layerGroup().addTo(map);
    L_.history = L.layerGroup();

    site.zones.forEach(function (z) {
      var p = L.polygon(z.polygon, {
        color: "#1a9850",
        weight: 2,
        fillOpacity: 0.12,
        className: "vigil-zone",
      });
      tip(p, function () { return "zone " + z.id + ": " + z.name + " (priority " + z.priority + ")"; });
      p.addTo(L_.zones);
      tag(p, { "data-zone-id": z.id });
      V.zones[z.id] = z;
    });
    site.roads.forEach(function (r) {
      L.polyline(r.path, { color: "#444", weight: 2, interactive: false }).addTo(L_.ways);
    });
    site.corridors.forEach(function (c) {
      var line = L.polyline(c.path, { color: "#984ea3", weight: 2, dashArray: "6 4" });
      tip(line, function () { return "corridor " + c.id; });
      line.addTo(L_.ways);
    });
    site.segments.forEach(function (s) {
      var line = L.polyline(s.line, { weight: 5, opacity: 0.9, className: "vigil-segment" });
      tip(line, function () {
        var n = V.segments[s.id].count;
        return s.id + ": km " + s.km[0].toFixed(1) + "–" + s.km[1].toFixed(1) +
          ", " + n + " crossing" + (n === 1 ? "" : "s") + " recently";
      });
      line.addTo(L_.segments);
      tag(line, { "data-segment-id": s.id });
      V.segments[s.id] = { layer: line, index: s.index, count: 0 };
      styleSegment(s.id);
    });
    site.towers.forEach(function (t) {
      var fov = L.polygon([[t.lat, t.lon]], {
        color: "#045a8d",
        weight: 1,
        fillOpacity: 0.08,
        className: "vigil-fov",
      }).addTo(L_.fov);
      tag(fov, { "data-tower-id": t.id });
      if (site.coverage === "viewsheds")
        tip(fov, function () { return "tower " + t.id + ": what it sees on the relief (viewshed)"; });
      var m = L.marker([t.lat, t.lon], {
        icon: L.divIcon({ className: "vigil-tower", iconSize: [16, 16] }),
        keyboard: false,
      });
      tip(m, function () {
        var v = V.towers[t.id];
        return "tower " + t.id + ": mast " + t.mast + " m, pan " + v.pan.toFixed(0) +
          "°, tilt " + v.tilt.toFixed(1) + "°" + (v.reason ? " (" + v.reason + ")" : "");
      });
      m.addTo(L_.towers);
      tag(m, { "data-tower-id": t.id });
      V.towers[t.id] = { marker: m, fov: fov, pan: 0, tilt: 0, reason: "" };
    });
    site.sensors.forEach(function (s) {
      var c = L.circleMarker([s.lat, s.lon], {
        radius: 5,
        weight: 2,
        color: MODALITY_COLOURS[s.modality] || "#555",
        fillColor: SENSOR_COLOURS.ok,
        fillOpacity: 0.9,
        className: "vigil-sensor",
      });
      tip(c, function () {
        var v = V.sensors[s.id];
        var text = "sensor " + s.id + " (" + s.modality + "): " + v.state;
        if (v.battery !== null && v.battery !== undefined)
          text += ", battery " + Math.round(v.battery * 100) + "%";
        if (v.tamper) text += ", TAMPER";
        text += ", last heard " + age(v.heard);
        if (v.event) text += "; last event " + v.event["class"] + " " + age(v.event.time);
        return text;
      });
      c.addTo(L_.sensors);
      tag(c, { "data-sensor-id": s.id, "data-state": "unknown" });
      V.sensors[s.id] = { layer: c, state: "unknown", heard: null, battery: null, event: null };
    });
    site.units.forEach(function (u) {
      var m = L.marker([u.lat, u.lon], {
        icon: L.divIcon({ className: "vigil-unit", iconSize: [14, 14] }),
        keyboard: false,
      });
      tip(m, function () { return "unit " + u.id + " (" + u.kind + ")"; });
      m.addTo(L_.units);
      tag(m, { "data-unit-id": u.id });
      V.units[u.id] = u;
    });
    site.aircraft.forEach(function (a) {
      L.circle(a.orbit, {
        radius: a.radius,
        color: "#e7298a",
        weight: 1.5,
        fill: false,
        dashArray: "4 4",
        className: "vigil-orbit",
      }).addTo(L_.uas);
    });

    L.control
      .layers(
        null,
        {
          "border segments": L_.segments,
          "tracks": L_.tracks,
          "trails": L_.trails,
          "alerts": L_.alerts,
          "towers": L_.towers,
          [site.coverage === "viewsheds" ? "viewshed coverage" : "fields of view"]: L_.fov,
          "ground sensors": L_.sensors,
          "patrol units": L_.units,
          "aircraft": L_.uas,
          "zones": L_.zones,
          "roads and corridors": L_.ways,
        },
        { collapsed: true }
      )
      .addTo(map);
  }

  // -- applying updates -------------------------------------------------------------------

  function styleSegment(id) {
    var s = V.segments[id];
    var n = s.count;
    var colour = n === 0 ? (s.index % 2 ? "#9e9ac8" : "#6a51a3") :
      n === 1 ? "#fdae61" : n <= 3 ? "#f46d43" : n <= 6 ? "#d73027" : "#a50026";
    s.layer.setStyle({ color: colour, weight: n === 0 ? 4 : 6 + Math.min(n, 6) });
    tag(s.layer, { "data-crossings": n });
  }

  function applySegments(counts) {
    for (var id in V.segments) {
      var n = counts[id] || 0;
      if (V.segments[id].count !== n) {
        V.segments[id].count = n;
        styleSegment(id);
      }
    }
  }

  function trackIcon(className) {
    return L.divIcon({
      className: className || "vigil-track",
      html: '<span class="glyph"></span><i class="course"></i>',
      iconSize: [22, 22],
      iconAnchor: [11, 11],
    });
  }

  var ICON = null;
  var HISTORY_ICON = null;

  // the course arrow of a track marker (its element exists only while it is on the map)
  function steer(t) {
    var e = t.marker.getElement();
    if (!e || !e.lastChild) return;
    var arrow = e.lastChild;
    if (t.course === null || t.course === undefined) arrow.style.display = "none";
    else {
      arrow.style.display = "";
      arrow.style.transform = "rotate(" + t.course + "deg)";
    }
  }

  // row: [id, lat, lon, class, state, course, speed, time, count]
  function upsertTrack(row) {
    var id = row[0];
    var ll = [row[1], row[2]];
    var t = V.tracks[id];
    if (!t) {
      var marker = L.marker(ll, { icon: ICON || (ICON = trackIcon()), keyboard: false });
      tip(marker, function () {
        var r = V.tracks[id].row;
        // r[8] counts the measurements fused into the track, not people
        return "track " + r[0] + ": " + r[3] + ", " + r[4] + ", " + r[8] +
          (r[8] === 1 ? " update" : " updates") +
          ", " + r[6].toFixed(1) + " m/s" + (r[5] === null ? "" : " heading " + r[5].toFixed(0) + "°") +
          " at " + clock(r[7]) + (V.labels[id] ? "; " + labelText(V.labels[id]) : "");
      });
      marker.bindPopup(function () { return trackPopup(id); }, { minWidth: 220 });
      tag(marker, { "data-track-id": id });
      if (V.labels[id]) tag(marker, { "data-label": V.labels[id].label });
      var trail = L.polyline([ll], {
        renderer: L_.trailRenderer,
        color: CLASS_COLOURS[row[3]] || CLASS_COLOURS.unknown,
        weight: 2,
        opacity: 0.75,
        interactive: false,
      }).addTo(L_.trails);
      t = V.tracks[id] = { marker: marker, trail: trail, pts: [ll], row: row, cls: null,
        state: null, course: undefined };
      marker.on("add", function () { steer(V.tracks[id] || t); });
      marker.addTo(L_.tracks);
    } else {
      t.marker.setLatLng(ll);
      t.pts.push(ll);
      if (t.pts.length > TRAIL_POINTS) t.pts.shift();
      t.trail.setLatLngs(t.pts);
      t.row = row;
    }
    if (t.cls !== row[3]) {
      t.cls = row[3];
      tag(t.marker, { "data-class": row[3] });
      t.trail.setStyle({ color: CLASS_COLOURS[row[3]] || CLASS_COLOURS.unknown });
    }
    if (t.state !== row[4]) {
      t.state = row[4];
      tag(t.marker, { "data-state": row[4] });
    }
    if (t.course !== row[5]) {
      t.course = row[5];
      steer(t);
    }
  }

  // -- operators' labels -------------------------------------------------------------------
  //
  // A label view is {track, label, time (UTC s), by, previous}; the server sends each track's
  // latest with the snapshot and each new one in a batch (maps/live/labelling.py).

  function labelText(v) {
    return "operator label " + v.label + " (" + v.by + ", " + clock(v.time) + ")";
  }

  function applyLabel(v) {
    var old = V.labels[v.track];
    // an older label arriving late, or the one the page has (its own, echoed by the feed):
    // the open popup is left as it is
    if (old && (old.time > v.time || (old.time === v.time && old.label === v.label))) return;
    V.labels[v.track] = v;
    var t = V.tracks[v.track];
    if (!t) return;
    tag(t.marker, { "data-label": v.label });
    var p = t.marker.getPopup();
    if (p && p.isOpen()) p.update();
  }

  // a track's popup as DOM nodes (text through textContent only): its label and the control
  function trackPopup(id) {
    var box = el("div", "vigil-track-popup");
    box.setAttribute("data-track-id", id);
    var t = V.tracks[id];
    var cls = t ? t.row[3] : null;
    box.appendChild(el("div", "popup-title", "track " + id + (cls ? " · tracker: " + cls : "")));
    var v = V.labels[id];
    var current = el("div", "operator-label", v ? labelText(v) : "no operator label");
    if (v) current.setAttribute("data-label", v.label);
    box.appendChild(current);
    if (!can("tracks.label")) return box;
    var row = el("div", "label-control");
    var sel = el("select", "label-choice");
    LABELS.forEach(function (k) {
      var o = el("option", null, k);
      o.value = k;
      if (k === (v ? v.label : cls)) o.selected = true;
      sel.appendChild(o);
    });
    var set = el("button", "label-set", "label");
    set.type = "button";
    set.addEventListener("click", function (ev) {
      ev.stopPropagation();
      postLabel(id, sel.value, set, box);
    });
    row.appendChild(sel);
    row.appendChild(set);
    box.appendChild(row);
    box.appendChild(el("div", "label-error"));
    return box;
  }

  function postLabel(id, label, button, box) {
    var err = box.querySelector(".label-error");
    button.disabled = true;
    return fetch(BASE + "api/tracks/" + encodeURIComponent(id) + "/label", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": V.me.csrf },
      body: JSON.stringify({ label: label }),
    }).then(function (r) {
      return r.json().then(function (j) {
        button.disabled = false;
        if (!r.ok) {
          err.textContent = j.error || "HTTP " + r.status;
          return j;
        }
        err.textContent = "";
        applyLabel({ track: j.track, label: j.label, time: j.time, by: j.by, previous: j.previous });
        return j;
      });
    }).catch(function (e) {
      button.disabled = false;
      err.textContent = "not labelled: " + String(e && e.message ? e.message : e);
    });
  }

  function removeTrack(id) {
    var t = V.tracks[id];
    if (!t) return;
    L_.tracks.removeLayer(t.marker);
    L_.trails.removeLayer(t.trail);
    delete V.tracks[id];
  }

  function applySensor(v) {
    var s = V.sensors[v.id];
    if (!s) return;
    var hadEvent = s.event;
    s.state = v.state;
    s.battery = v.battery;
    s.tamper = v.tamper;
    s.heard = v.heard;
    s.event = v.event;
    refreshSensor(v.id);
    if (v.event && (!hadEvent || hadEvent.time !== v.event.time)) {
      var e = s.layer.getElement();
      if (e) {
        e.classList.add("vigil-sensor-hit");
        setTimeout(function () { e.classList.remove("vigil-sensor-hit"); }, 3000);
      }
    }
  }

  function refreshSensor(id) {
    var s = V.sensors[id];
    var state = s.state;
    if (s.heard && V.now - s.heard > SENSOR_STALE_S && state === "ok") state = "stale";
    var fill = s.tamper ? "#e31a1c" : state === "stale" ? "#bdbdbd" :
      SENSOR_COLOURS[state] || SENSOR_COLOURS.ok;
    s.layer.setStyle({ fillColor: fill });
    tag(s.layer, { "data-state": s.tamper ? "tamper" : state });
  }

  function applyTower(v) {
    var t = V.towers[v.id];
    if (!t) return;
    t.pan = v.pan;
    t.tilt = v.tilt;
    t.reason = v.reason;
    // on the relief: a GeoJSON MultiPolygon ([lon, lat], holes); else the flat wedge
    t.fov.setLatLngs(v.coverage ? L.GeoJSON.coordsToLatLngs(v.coverage.coordinates, 2) : v.fov);
    tag(t.fov, { "data-pan": v.pan.toFixed(1), "data-coverage": v.coverage ? "viewshed" : "wedge" });
  }

  function applyUas(v) {
    var u = V.uas[v.id];
    if (!u) {
      var m = L.marker([v.lat, v.lon], {
        icon: L.divIcon({ className: "vigil-uas", html: "<i></i>", iconSize: [20, 20] }),
        keyboard: false,
      });
      tip(m, function () {
        var w = V.uas[v.id].v;
        return "aircraft " + w.id + ": " + (w.agl !== null ? w.agl + " m above ground, " : "") +
          w.alt + " m MSL, heading " + w.yaw.toFixed(0) + "° at " + clock(w.time);
      });
      m.addTo(L_.uas);
      tag(m, { "data-aircraft-id": v.id });
      var fp = L.polygon(v.footprint.length ? v.footprint : [[v.lat, v.lon]], {
        color: "#e7298a",
        weight: 1.5,
        fillOpacity: 0.12,
        className: "vigil-uas-footprint",
      }).addTo(L_.uas);
      tag(fp, { "data-aircraft-id": v.id });
      u = V.uas[v.id] = { marker: m, footprint: fp, v: v };
    } else {
      u.marker.setLatLng([v.lat, v.lon]);
      if (v.footprint.length) u.footprint.setLatLngs(v.footprint);
    }
    u.v = v;
    var i = u.marker.getElement() && u.marker.getElement().firstChild;
    if (i) i.style.transform = "rotate(" + v.yaw + "deg)";
  }

  // -- alerts -----------------------------------------------------------------------------

  var queueDirty = false;

  function applyAlert(a) {
    var old = V.alerts[a.id];
    if (a.state === "closed") {
      if (old) {
        L_.alerts.removeLayer(old.marker);
        if (old.path) L_.alerts.removeLayer(old.path);
        delete V.alerts[a.id];
      }
      queueDirty = true;
      return;
    }
    if (!old) {
      var m = L.marker([a.lat, a.lon], {
        icon: L.divIcon({ className: "vigil-alert-marker", html: "<i>!</i>", iconSize: [26, 26] }),
        zIndexOffset: 1000,
        keyboard: false,
      });
      tip(m, function () {
        var x = V.alerts[a.id].a;
        return x.id + ": " + x.kind + " (priority " + x.priority + ") " + x.summary;
      });
      m.addTo(L_.alerts);
      tag(m, { "data-alert-id": a.id });
      old = V.alerts[a.id] = { marker: m, path: null, a: a };
    } else {
      old.marker.setLatLng([a.lat, a.lon]);
    }
    old.a = a;
    if (old.path) L_.alerts.removeLayer(old.path);
    old.path = null;
    if (a.predicted.length) {
      old.path = L.polyline(
        [[a.lat, a.lon]].concat(a.predicted.map(function (p) { return [p[0], p[1]]; })),
        { color: "#ff7f00", weight: 2, dashArray: "5 5", interactive: false }
      ).addTo(L_.alerts);
    }
    tag(old.marker, { "data-state": a.state });
    queueDirty = true;
  }

  function postAction(alertId, action, body, button) {
    button.disabled = true;
    return fetch(BASE + "api/alerts/" + encodeURIComponent(alertId) + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": V.me.csrf },
      body: JSON.stringify(body || {}),
    }).then(function (r) {
      return r.json().then(function (j) {
        var item = document.querySelector('#alert-queue .alert[data-alert-id="' + CSS.escape(alertId) + '"]');
        if (!r.ok) {
          button.disabled = false;
          if (item) {
            var msg = item.querySelector(".action-error") || item.appendChild(el("div", "action-error"));
            msg.textContent = j.error || "HTTP " + r.status;
          }
          return j;
        }
        if (item) item.setAttribute("data-pending", action);
        return j;
      });
    });
  }

  function renderQueue() {
    queueDirty = false;
    var q = $("alert-queue");
    var list = Object.keys(V.alerts).map(function (k) { return V.alerts[k].a; });
    list.sort(function (x, y) {
      var ax = x.state === "acknowledged" ? 1 : 0, ay = y.state === "acknowledged" ? 1 : 0;
      return ax - ay || x.priority - y.priority || y.time - x.time;
    });
    $("alert-count").textContent = list.length;
    var frag = document.createDocumentFragment();
    list.forEach(function (a) {
      var item = el("div", "alert priority-" + a.priority + " state-" + a.state);
      item.setAttribute("data-alert-id", a.id);
      item.setAttribute("data-state", a.state);
      var head = el("div", "alert-head");
      head.appendChild(el("span", "priority", "P" + a.priority));
      head.appendChild(el("span", "kind", a.kind.replace("_", " ")));
      var zone = a.zone && V.zones[a.zone] ? V.zones[a.zone].name : a.zone;
      head.appendChild(el("span", "where", a.segment || zone || ""));
      head.appendChild(el("span", "time", clock(a.time)));
      item.appendChild(head);
      if (a.summary) item.appendChild(el("div", "summary", a.summary));
      var meta = [];
      if (a.track) meta.push("track " + a.track);
      if (a.assigned) meta.push("assigned " + a.assigned);
      else if (a.units.length) meta.push("recommended " + a.units.join(", "));
      meta.push(a.state + (a.by ? " by " + a.by : ""));
      item.appendChild(el("div", "meta", meta.join(" · ")));
      var actions = el("div", "actions");
      if (can("alerts.acknowledge") && a.state !== "acknowledged") {
        var ack = el("button", "ack", "acknowledge");
        ack.type = "button";
        ack.addEventListener("click", function (ev) {
          ev.stopPropagation();
          postAction(a.id, "acknowledge", {}, ack);
        });
        actions.appendChild(ack);
      }
      if (can("alerts.assign")) {
        var sel = el("select", "assign-unit");
        var units = a.units.length ? a.units : Object.keys(V.units);
        Object.keys(V.units).forEach(function (u) {
          var o = el("option", null, u + (a.units.indexOf(u) >= 0 ? " ★" : ""));
          o.value = u;
          if (u === (a.assigned || units[0])) o.selected = true;
          sel.appendChild(o);
        });
        sel.addEventListener("click", function (ev) { ev.stopPropagation(); });
        var asg = el("button", "assign", "assign");
        asg.type = "button";
        asg.addEventListener("click", function (ev) {
          ev.stopPropagation();
          postAction(a.id, "assign", { unit: sel.value }, asg);
        });
        actions.appendChild(sel);
        actions.appendChild(asg);
      }
      if (can("alerts.close")) {
        var cls = el("button", "close", "close");
        cls.type = "button";
        cls.addEventListener("click", function (ev) {
          ev.stopPropagation();
          postAction(a.id, "close", {}, cls);
        });
        actions.appendChild(cls);
      }
      if (actions.childNodes.length) item.appendChild(actions);
      item.addEventListener("click", function () {
        V.map.setView([a.lat, a.lon], Math.max(V.map.getZoom(), 14));
      });
      frag.appendChild(item);
    });
    q.replaceChildren(frag);
  }

  // -- messages ---------------------------------------------------------------------------

  function apply(msg) {
    var i;
    if (msg.now) V.now = msg.now;
    if (msg.alert_overflow !== undefined) V.overflow = msg.alert_overflow;
    if (msg.broker !== undefined) V.broker = msg.broker;
    if (msg.type === "snapshot") {
      V.stats.snapshots++;
      var keep = {};
      msg.tracks.forEach(function (r) { keep[r[0]] = true; });
      Object.keys(V.tracks).forEach(function (id) { if (!keep[id]) removeTrack(id); });
      Object.keys(V.alerts).forEach(function (id) {
        applyAlert({ id: id, state: "closed" });
      });
    }
    if (msg.labels) msg.labels.forEach(applyLabel);
    if (msg.tracks) {
      for (i = 0; i < msg.tracks.length; i++) upsertTrack(msg.tracks[i]);
      V.stats.trackUpdates += msg.tracks.length;
    }
    if (msg.ended) for (i = 0; i < msg.ended.length; i++) removeTrack(msg.ended[i]);
    if (msg.alerts) msg.alerts.forEach(applyAlert);
    if (msg.sensors) msg.sensors.forEach(applySensor);
    if (msg.towers) msg.towers.forEach(applyTower);
    if (msg.uas) msg.uas.forEach(applyUas);
    if (msg.segments) applySegments(msg.segments);
    if (queueDirty) renderQueue();
  }

  function record(list, v) {
    if (list.length < STATS_CAP) list.push(v);
  }

  function onMessage(ev) {
    var t0 = performance.now();
    var msg = JSON.parse(ev.data);
    apply(msg);
    var t1 = performance.now();
    V.stats.messages++;
    record(V.stats.applyMs, t1 - t0);
    if (msg.arrived) record(V.stats.busToAppliedMs, Date.now() - msg.arrived * 1000);
    requestAnimationFrame(function () { record(V.stats.frameMs, performance.now() - t0); });
    if (!V.playing) showLive();
  }

  function showLive() {
    if (V.broker === "lost") {
      // the server is up but no longer fed: say so rather than look like a quiet sector
      setStatus("disconnected", "broker connection lost · last known picture · " + clock(V.now));
      return;
    }
    var text = "live · " + Object.keys(V.tracks).length + " tracks · " + clock(V.now);
    // open alerts beyond the queue's cap are kept by the server and said here, never dropped
    if (V.overflow > 0) text += " · " + V.overflow + " open alerts over the queue's cap";
    setStatus(V.overflow > 0 ? "overflow" : "live", text);
  }

  function setStatus(state, text) {
    var s = $("live-status");
    s.setAttribute("data-state", state);
    s.textContent = text;
    s.title = "times in " + TIME_ZONE;
  }

  var retry = 500;

  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + BASE + "ws");
    V.ws = ws;
    ws.onopen = function () {
      retry = 500;
      if (!V.playing) setStatus("live", "live");
    };
    ws.onmessage = onMessage;
    ws.onclose = function () {
      if (!V.playing) setStatus("disconnected", "disconnected; reconnecting…");
      // a refused handshake looks like any other close: ask whether the session still holds
      fetch(BASE + "api/me", { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401) window.location.href = "/login";
        else setTimeout(connect, retry);
      }, function () { setTimeout(connect, retry); });
      retry = Math.min(retry * 2, 10000);
    };
  }

  // -- history playback -------------------------------------------------------------------
  //
  // While playing, the live tracks and trails are off the map (still kept current, so
  // returning to live shows the present at once), the status says "playback" and the time
  // shown, and the alert queue is marked as the live queue (history holds tracks only).

  var playback = null;
  var playRequest = 0;

  function markQueue(playing) {
    var section = $("alerts-section");
    section.setAttribute("data-mode", playing ? "playback" : "live");
    $("alert-mode").textContent = playing ? "live now, not played back" : "";
    // the alert markers on the map are live too: dimmed while the tracks are history
    V.map.getContainer().classList.toggle("vigil-playback", playing);
  }

  function setPlayback(on) {
    var slider = $("history-slider");
    var request = ++playRequest;
    if (!on) {
      playback = null;
      V.playing = false;
      L_.history.clearLayers();
      V.map.removeLayer(L_.history);
      L_.tracks.addTo(V.map);
      L_.trails.addTo(V.map);
      slider.disabled = true;
      $("history-time").textContent = "";
      markQueue(false);
      showLive();
      return;
    }
    V.playing = true;
    V.map.removeLayer(L_.tracks);
    V.map.removeLayer(L_.trails);
    L_.history.clearLayers();
    L_.history.addTo(V.map);
    markQueue(true);
    setStatus("playback", "playback · loading history…");
    var hours = $("history-hours").value;
    getJSON(BASE + "api/history?hours=" + encodeURIComponent(hours)).then(function (h) {
      if (request !== playRequest) return; // switched off or asked again meanwhile
      playback = h;
      h.tracks.forEach(function (tr) { tr.times = tr.points.map(function (p) { return p[0]; }); });
      slider.disabled = false;
      slider.value = slider.max;
      showPlayback();
    }).catch(function (e) {
      if (request !== playRequest) return;
      setStatus("error", "playback: " + String(e && e.message ? e.message : e));
    });
  }

  function lastIndexAtOrBefore(times, t) {
    var lo = 0, hi = times.length - 1, best = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (times[mid] <= t) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  function showPlayback() {
    if (!playback) return;
    var slider = $("history-slider");
    var t = playback.t0 + (playback.t1 - playback.t0) * (slider.value / slider.max);
    $("history-time").textContent = clock(t) + " (" + ((playback.t1 - t) / 3600).toFixed(2) + " h before the latest)";
    L_.history.clearLayers();
    var shown = 0;
    playback.tracks.forEach(function (tr) {
      var i = lastIndexAtOrBefore(tr.times, t);
      if (i < 0 || t - tr.times[i] > 120) return;
      var j = lastIndexAtOrBefore(tr.times, t - 600);
      var pts = tr.points.slice(Math.max(0, j), i + 1).map(function (p) { return [p[1], p[2]]; });
      L.polyline(pts, { color: CLASS_COLOURS[tr["class"]] || "#636363", weight: 2,
        renderer: L_.trailRenderer, interactive: false }).addTo(L_.history);
      var seen = tr.times[i];
      var m = L.marker(pts[pts.length - 1], {
        icon: HISTORY_ICON || (HISTORY_ICON = trackIcon("vigil-track vigil-history-track")),
        keyboard: false,
      });
      tip(m, function () {
        return "track " + tr.id + " at " + clock(seen) + (tr.label ? "; " + labelText(tr.label) : "");
      });
      tag(m, { "data-track-id": tr.id, "data-class": tr["class"] || "unknown" });
      if (tr.label) tag(m, { "data-label": tr.label.label });
      m.addTo(L_.history);
      shown++;
    });
    setStatus("playback", "playback · " + clock(t) + " · " + shown + " tracks");
  }

  // -- start ------------------------------------------------------------------------------

  V.start = function (map, options) {
    V.map = map;
    setTimeZone(options && options.timezone);
    V.timeZone = TIME_ZONE;
    V.clock = clock;
    if (options && options.bounds) map.fitBounds(options.bounds);
    Promise.all([getJSON(BASE + "api/me"), getJSON(BASE + "api/site")]).then(function (r) {
      V.me = r[0];
      $("whoami").textContent = V.me.user + " (" + V.me.role + ")";
      $("logout-csrf").value = V.me.csrf;
      document.body.setAttribute("data-role", V.me.role);
      if (!can("history")) $("playback").style.display = "none";
      buildLayers(map, r[1]);
      $("history-toggle").addEventListener("change", function (e) { setPlayback(e.target.checked); });
      $("history-hours").addEventListener("change", function () {
        if (V.playing) setPlayback(true);
      });
      $("history-slider").addEventListener("input", showPlayback);
      setInterval(function () {
        for (var id in V.sensors) refreshSensor(id);
      }, 5000);
      connect();
    }).catch(function (e) {
      setStatus("error", String(e));
    });
  };

  // The page's options (maps/live/page.py): initial view, local tiles, base layer GeoJSON,
  // the sector's time zone.
  function boot() {
    var node = document.getElementById("vigil-live-options");
    if (!node) return;
    var o = JSON.parse(node.textContent);
    var map = L.map("vigil-map", { center: o.centre, zoom: o.zoom, zoomControl: true });
    L.control.scale().addTo(map);
    if (o.tiles) {
      L.tileLayer(o.tiles.url, { attribution: escapeHTML(o.tiles.attribution), maxZoom: 19 })
        .addTo(map);
    }
    (o.base || []).forEach(function (fc) {
      L.geoJSON(fc, {
        style: function () { return { color: "#555", weight: 1.5, dashArray: "4 3" }; },
        interactive: false,
      }).addTo(map);
    });
    V.start(map, o);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
