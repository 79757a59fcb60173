// Jobs lists: select all, and live rows over ONE event stream for the rows shown.
(function () {
  "use strict";
  var source = null, rows = {}, timer = null;

  function duration(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return h + ":" + (m < 10 ? "0" : "") + m + ":" + (sec < 10 ? "0" : "") + sec;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    return Number(v.toPrecision(4)).toString();
  }
  function cell(tr, selector) { return tr.querySelector(selector); }

  function applyRow(row) {
    var tr = document.querySelector('#jobs-table tr[data-job="' + row.id + '"]');
    if (!tr) return;
    rows[row.id] = { row: row, at: Date.now() };
    tr.setAttribute("data-status", row.status);
    var badge = cell(tr, '[data-col="status"]');
    if (badge) { badge.textContent = row.status; badge.className = "badge status-" + row.status; }
    var queue = cell(tr, '[data-col="queue"]');
    if (queue) queue.textContent = row.queue_position ? "#" + row.queue_position + " in queue" : "";
    var bar = cell(tr, '[data-col="progress"]');
    if (bar) {
      bar.hidden = row.status !== "running" || row.progress === null;
      window.labyardProgress(bar, row.progress);
    }
    tr.querySelectorAll("[data-metric]").forEach(function (td) {
      var m = row.metrics[td.getAttribute("data-metric")];
      if (!m) return;
      td.textContent = fmt(m[0]) + " ";
      var best = document.createElement("span");
      best.className = "muted";
      best.textContent = "/ " + fmt(m[1]);
      td.appendChild(best);
    });
    tickRow(tr, rows[row.id]);
  }
  function tickRow(tr, entry) {
    var row = entry.row, since = (Date.now() - entry.at) / 1000, live = row.status === "running";
    var elapsed = row.elapsed_seconds === null ? null : row.elapsed_seconds + (live ? since : 0);
    var e = cell(tr, '[data-col="elapsed"]'), eta = cell(tr, '[data-col="eta"]');
    if (e) e.textContent = duration(elapsed);
    if (eta) eta.textContent = live && row.eta_seconds !== null ? duration(row.eta_seconds - since) : "–";
  }
  function tickAll() {
    Object.keys(rows).forEach(function (id) {
      var tr = document.querySelector('#jobs-table tr[data-job="' + id + '"]');
      if (tr) tickRow(tr, rows[id]);
    });
  }

  function connect() {
    if (source) { source.close(); source = null; }
    rows = {};
    var table = document.getElementById("jobs-table");
    if (!table) return;
    var ids = table.getAttribute("data-live-ids");
    if (!ids) return;
    source = new EventSource("/jobs/events?ids=" + encodeURIComponent(ids));
    source.addEventListener("row", function (e) { applyRow(JSON.parse(e.data)); });
    source.addEventListener("end", function () { source.close(); });
    if (!timer) timer = setInterval(tickAll, 1000);
  }

  document.addEventListener("change", function (event) {
    var t = event.target;
    if (t instanceof HTMLInputElement && t.hasAttribute("data-select-all")) {
      document.querySelectorAll('#jobs-table input[name="job_ids"]').forEach(function (box) { box.checked = t.checked; });
    }
  });
  var connectedTo = null;
  document.addEventListener("htmx:afterSettle", function () {
    var table = document.getElementById("jobs-table");
    if (table !== connectedTo) { connectedTo = table; connect(); }
  });
  connectedTo = document.getElementById("jobs-table");
  connect();
})();
