// The job page: tabs, top panel (elapsed and ETA ticking), charts (uPlot), the live log,
// all fed by ONE server-sent event stream that resumes from its Last-Event-ID.
(function () {
  "use strict";
  var bootEl = document.getElementById("job-boot");
  if (!bootEl) return;
  var boot = JSON.parse(bootEl.textContent);  // a data block: tojson escapes <, > and &
  var jobId = boot.job_id;
  var MAX_LOG_LINES = 20000;
  var MAX_POINTS = boot.max_points;  // LABYARD_CHART_MAX_POINTS
  var COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c92a2a", "#7048e8", "#0c8599", "#d6336c", "#5c940d"];

  // ------------------------------------------------------------------ tabs
  function showTab(name) {
    var found = false;
    document.querySelectorAll("[data-panel]").forEach(function (panel) {
      var on = panel.getAttribute("data-panel") === name;
      panel.hidden = !on;
      found = found || on;
    });
    if (!found) return showTab("metrics");
    document.querySelectorAll("[data-tab]").forEach(function (a) {
      if (a.getAttribute("data-tab") === name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    if (name === "metrics") renderCharts();
    if (name === "log") scrollLog();
  }
  window.addEventListener("hashchange", function () { showTab(location.hash.slice(1)); });

  // ------------------------------------------------------------------ top panel
  var state = null, stateAt = 0;
  function duration(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return h + ":" + (m < 10 ? "0" : "") + m + ":" + (sec < 10 ? "0" : "") + sec;
  }
  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function applyState(s) {
    state = s; stateAt = Date.now();
    var badge = document.getElementById("job-status");
    badge.textContent = s.status + (s.stop_requested && !s.final ? " (stopping)" : "");
    badge.className = "badge status-" + s.status;
    text("job-queue", s.queue_position ? "#" + s.queue_position + " in queue" : "");
    text("job-exit", s.exit_code === null ? "–" : String(s.exit_code));
    text("job-reason", s.reason || "–");
    text("job-progress-line", s.progress_line || "");
    var bar = document.getElementById("job-progress");
    if (bar) window.labyardProgress(bar, s.progress);
    if (s.assigned_gpus && s.assigned_gpus.length) text("job-gpus", s.assigned_gpus.length + " (" + s.assigned_gpus.join(", ") + ")");
    [["job-cluster", s.cluster], ["job-node", s.node]].forEach(function (fact) {
      var box = document.getElementById(fact[0] + "-fact");
      if (box) box.hidden = !fact[1];
      text(fact[0], fact[1] || "");
    });
    var stop = document.getElementById("job-stop");
    if (stop) stop.disabled = !!s.final || !!s.stop_requested;
    var del = document.getElementById("job-delete");
    if (del) del.disabled = !!s.live;
    // "Save as dataset" (templates/job.html, Files tab): only a finished job's output
    var saveAsDataset = document.getElementById("job-save-dataset-button");
    if (saveAsDataset) saveAsDataset.disabled = !s.final;
    tick();
  }
  function tick() {
    if (!state) return;
    var since = (Date.now() - stateAt) / 1000;
    var live = state.status === "running";
    var elapsed = state.elapsed_seconds === null ? null : state.elapsed_seconds + (live ? since : 0);
    text("job-elapsed", duration(elapsed));
    text("job-eta", live && state.eta_seconds !== null ? duration(state.eta_seconds - since) : "–");
  }
  setInterval(tick, 1000);

  // ------------------------------------------------------------------ charts
  var series = {};   // name -> {group, x_name, x: [], y: []}
  var charts = {};   // panel id (metric@axis) -> labyardCharts.Panel (static/js/charts.js)
  var chartTimer = null;
  boot.series.forEach(function (s) {
    series[s.name] = { group: s.group, x_name: s.x_name, x: s.x.slice(), y: s.y.slice() };
  });
  var reloading = {};  // series name -> points that arrived while the server downsampled it
  function addPoints(points) {
    points.forEach(function (p) {  // [name, x_name, x, value]
      var s = series[p[0]];
      if (!s) s = series[p[0]] = { group: p[0].split("_")[0], x_name: p[1], x: [], y: [] };
      if (s.x.length && p[2] <= s.x[s.x.length - 1]) { s.unsorted = true; }
      s.x.push(p[2]); s.y.push(p[3]);
      if (reloading[p[0]]) reloading[p[0]].push(p);
      else if (s.x.length > 2 * MAX_POINTS) reload(p[0]);
    });
    scheduleCharts();
  }
  // A series grown past twice the limit is read again downsampled by the server
  // (labyard/jobs/metrics.py: the one downsampling), plus what arrived meanwhile.
  function reload(name) {
    reloading[name] = [];
    var url = "/api/v1/jobs/" + jobId + "/metrics?name=" + encodeURIComponent(name) + "&points=" + MAX_POINTS;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (body) {
        var s = series[name], xs = [], ys = [];
        body.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); });
        var lastX = xs.length ? xs[xs.length - 1] : -Infinity;
        reloading[name].forEach(function (p) { if (p[2] > lastX) { xs.push(p[2]); ys.push(p[3]); } });
        s.x = xs; s.y = ys; s.unsorted = false;
        scheduleCharts();
      })
      .catch(function () { /* keep every point; the next one tries again */ })
      .finally(function () { delete reloading[name]; });
  }
  function scheduleCharts() {
    if (chartTimer) return;
    chartTimer = setTimeout(function () { chartTimer = null; renderCharts(); }, 250);
  }
  // By x, ties in arrival order (a stable sort), one point per x, the latest: a step that a
  // resumed or requeued job redid replaces its first try (as rollup.latest_per_x does).
  function sortSeries(s) {
    var idx = s.x.map(function (_, i) { return i; }).sort(function (a, b) { return s.x[a] - s.x[b]; });
    var xs = [], ys = [];
    idx.forEach(function (i) {
      if (xs.length && xs[xs.length - 1] === s.x[i]) ys[ys.length - 1] = s.y[i];
      else { xs.push(s.x[i]); ys.push(s.y[i]); }
    });
    s.x = xs; s.y = ys; s.unsorted = false;
  }
  // One panel per metric name (Train_loss and Validation_loss share the `loss` panel); a
  // metric logged over two x-axes gets one panel per axis ("loss · by epoch").
  var GROUP_ORDER = ["Train", "Validation", "Test"], AXIS_ORDER = ["step", "iter", "epoch"];
  var METRIC_ORDER = ["loss", "acc", "accuracy"];
  var GROUP_COLORS = { Train: COLORS[0], Validation: COLORS[1], Test: COLORS[2] };
  function rank(list, v) { var i = list.indexOf(v); return i < 0 ? 99 : i; }
  function byRank(list) { return function (a, b) { return rank(list, a) - rank(list, b) || (a < b ? -1 : a > b ? 1 : 0); }; }
  function metricOf(name) { var i = name.indexOf("_"); return i < 0 ? name : name.slice(i + 1); }
  function panelsNow() {
    var choice = document.getElementById("chart-x").value, byMetric = {}, out = [];
    Object.keys(series).forEach(function (n) { (byMetric[metricOf(n)] = byMetric[metricOf(n)] || []).push(n); });
    Object.keys(byMetric).sort(byRank(METRIC_ORDER)).forEach(function (metric) {
      var axes = {};
      byMetric[metric].forEach(function (n) { var a = series[n].x_name; (axes[a] = axes[a] || []).push(n); });
      var keys = choice === "auto" ? Object.keys(axes).sort(byRank(AXIS_ORDER)) : axes[choice] ? [choice] : [];
      keys.forEach(function (axis) {
        var names = axes[axis].sort(function (a, b) { return byRank(GROUP_ORDER)(series[a].group, series[b].group); });
        var several = Object.keys(axes).length > 1;
        out.push({ id: metric + "@" + axis, metric: metric, axis: axis, names: names,
                   title: several ? metric + " · by " + axis : metric });
      });
    });
    return out;
  }
  function renderCharts() {
    var box = document.getElementById("charts");
    if (!box || box.closest("[data-panel]").hidden || typeof uPlot === "undefined") return;
    var weight = parseFloat(document.getElementById("chart-smooth").value) || 0;
    var wanted = panelsNow(), ids = {};
    document.getElementById("charts-empty").hidden = wanted.length > 0;
    wanted.forEach(function (p) { ids[p.id] = true; });
    Object.keys(charts).forEach(function (id) { if (!ids[id]) { charts[id].destroy(); delete charts[id]; } });
    wanted.forEach(function (p) {
      var panel = charts[p.id];
      if (!panel) {
        panel = charts[p.id] = new window.labyardCharts.Panel(box, {
          title: p.title, file: "job" + jobId + "-" + p.title,
          attrs: { "data-metric": p.metric, "data-axis": p.axis }
        });
      }
      box.appendChild(panel.wrap);  // keep the panels in order as new ones arrive
      panel.set({
        xName: p.axis, yName: p.metric, smooth: weight,
        series: p.names.map(function (n, k) {
          var s = series[n];
          if (s.unsorted) sortSeries(s);
          return { name: n, x: s.x, y: s.y, stroke: GROUP_COLORS[s.group] || COLORS[(3 + k) % COLORS.length] };
        })
      });
    });
  }
  document.getElementById("chart-x").addEventListener("change", renderCharts);
  document.getElementById("chart-smooth").addEventListener("input", function (e) {
    text("chart-smooth-value", e.target.value);
    scheduleCharts();
  });
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) { charts[id].resize(); });
  });

  // ------------------------------------------------------------------ log
  var logBox = document.getElementById("log");
  var filterInput = document.getElementById("log-filter");
  var follow = document.getElementById("log-follow");
  // Log lines arrive as HTML rendered by the server (labyard/jobs/ansi.py: escaped text,
  // colours as classes), the same renderer as the page's first tail; this only inserts it.
  function matches(div) {
    var q = filterInput.value.trim().toLowerCase();
    return !q || div.getAttribute("data-text").indexOf(q) >= 0;
  }
  function appendLines(html) {
    var last = logBox.lastElementChild;
    logBox.insertAdjacentHTML("beforeend", html);
    for (var el = last ? last.nextElementSibling : logBox.firstElementChild; el; el = el.nextElementSibling) {
      if (!matches(el)) el.classList.add("hide");
    }
    var extra = logBox.childElementCount - MAX_LOG_LINES;
    while (extra-- > 0) logBox.removeChild(logBox.firstElementChild);
    scrollLog();
  }
  function scrollLog() {
    if (follow.checked && !logBox.closest("[data-panel]").hidden) logBox.scrollTop = logBox.scrollHeight;
  }
  logBox.addEventListener("scroll", function () {
    var atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 24;
    follow.checked = atBottom;
  });
  follow.addEventListener("change", scrollLog);
  filterInput.addEventListener("input", function () {
    for (var el = logBox.firstElementChild; el; el = el.nextElementSibling) {
      el.classList.toggle("hide", !matches(el));
    }
  });
  document.getElementById("log-search").addEventListener("click", function () {
    var q = filterInput.value.trim(), box = document.getElementById("log-results");
    if (!q) return;
    fetch("/api/v1/jobs/" + jobId + "/log/search?q=" + encodeURIComponent(q), { credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) { body.status = r.status; return body; });
      }, function () { return { status: 0 }; })
      .then(function (body) {
        box.hidden = false;
        box.textContent = "";
        var head = document.createElement("p");
        head.className = body.matches ? "muted" : "form-error";
        head.setAttribute("role", body.matches ? "status" : "alert");
        head.textContent = body.matches ? body.matches.length + (body.truncated ? "+" : "") + " matching lines in the whole log" : window.labyardProblem(body, body.status);
        box.appendChild(head);
        (body.matches || []).forEach(function (m) {
          box.insertAdjacentHTML("beforeend", m.html);  // rendered by the server
          var div = box.lastElementChild, num = document.createElement("span");
          num.className = "ln";
          num.textContent = m.line;
          div.insertBefore(num, div.firstChild);
        });
      });
  });

  // ------------------------------------------------------------------ the stream
  function connect() {
    var source = new EventSource("/jobs/" + jobId + "/events?cursor=" + encodeURIComponent(boot.cursor));
    source.addEventListener("log", function (e) { appendLines(JSON.parse(e.data).html); });
    source.addEventListener("metrics", function (e) { addPoints(JSON.parse(e.data).points); });
    source.addEventListener("status", function (e) { applyState(JSON.parse(e.data)); });
    source.addEventListener("end", function () { source.close(); document.body.setAttribute("data-stream", "ended"); });
    source.addEventListener("open", function () { document.body.setAttribute("data-stream", "open"); });
  }

  applyState(boot.state);
  // The log's tail came rendered by the server (escaped, colours as classes); the stream
  // continues after it (boot.cursor).
  showTab(location.hash.slice(1) || "metrics");
  connect();
})();
