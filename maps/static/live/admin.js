/* Vigil user administration: list and add users, read the audit log. Plain JavaScript. */
(function () {
  "use strict";
  var csrf = null;

  function row(cells, head) {
    var tr = document.createElement("tr");
    cells.forEach(function (c) {
      var td = document.createElement(head ? "th" : "td");
      td.textContent = c === null || c === undefined ? "" : String(c);
      tr.appendChild(td);
    });
    return tr;
  }

  function load() {
    fetch("/api/users", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (users) {
        var t = document.getElementById("users");
        t.replaceChildren(row(["name", "role", "unit"], true));
        users.forEach(function (u) { t.appendChild(row([u.name, u.role, u.unit])); });
      });
    fetch("/api/audit?limit=100", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (entries) {
        var t = document.getElementById("audit");
        t.replaceChildren(row(["time (UTC)", "user", "action", "target", "detail"], true));
        entries.reverse().forEach(function (e) {
          t.appendChild(row([new Date(e.time * 1000).toISOString(), e.user, e.action, e.target, e.detail]));
        });
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    fetch("/api/me", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (me) { csrf = me.csrf; load(); });
    document.getElementById("add-user").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = ev.target;
      var body = { name: f.name.value, role: f.role.value, unit: f.unit.value, password: f.password.value };
      fetch("/api/users", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      }).then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
        .then(function (res) {
          document.getElementById("admin-message").textContent =
            res[0] ? "added " + res[1].name : res[1].error;
          f.password.value = "";
          load();
        });
    });
  });
})();
