// The sweep page: a sortable table that is the charts' legend, one panel per metric with
// every job's curve (static/js/sweep_curves.js); ticked rows overlay only their curves;
// parallel coordinates (static/js/parcoords.js) whose brushes filter the table; a
// param-vs-metric scatter.
(function () {
  "use strict";
  var box = document.getElementById("sweep-chart");
  var table = document.getElementById("sweep-table");
  if (!box || !table) return;
  var sweepId = box.getAttribute("data-sweep"), bestId = Number(box.getAttribute("data-best"));
  var pinned = null;
  var smoothInput = document.getElementById("sweep-smooth");

  // ---------------------------------------------------------------- sorting
  // Each sortable header holds a <button>; the <th> says its order in aria-sort.
  table.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.classList.add("sortable");
    var button = th.querySelector("button.sort") || th;
    button.addEventListener("click", function () {
      var index = Array.prototype.indexOf.call(th.parentNode.children, th);
      var asc = th.getAttribute("data-dir") !== "asc";
      table.querySelectorAll("th[data-sort]").forEach(function (h) { h.removeAttribute("data-dir"); h.setAttribute("aria-sort", "none"); });
      th.setAttribute("data-dir", asc ? "asc" : "desc");
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(tr) {
        var td = tr.children[index]; if (!td) return "";
        var v = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent.trim();
        if (v === "") return null;
        var n = Number(v);
        return isNaN(n) ? v.toLowerCase() : n;
      }
      var keyed = rows.map(function (tr) { return [key(tr), tr]; });
      keyed.sort(function (a, b) {
        if (a[0] === null) return 1; if (b[0] === null) return -1;
        var r = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
        return asc ? r : -r;
      });
      var frag = document.createDocumentFragment();
      keyed.forEach(function (k) { frag.appendChild(k[1]); });
      body.appendChild(frag);
    });
  });

  // ---------------------------------------------------------------- curves
  // One panel per metric (static/js/sweep_curves.js); a job hovered or pinned, in a row or on
  // a curve, is highlighted in every panel and in the table.
  function highlight(jobId) {
    table.querySelectorAll("tr.focus").forEach(function (tr) { tr.classList.remove("focus"); });
    if (jobId) {
      var tr = table.querySelector('tr[data-job="' + jobId + '"]');
      if (tr) tr.classList.add("focus");
    }
  }
  function focusJob(jobId, except) {  // the job's curves in front (null: all), its row marked
    if (curves) curves.focus(jobId, except);
    highlight(jobId);
  }
  function pin(jobId, scroll) {  // click: keep a job highlighted until clicked again
    pinned = pinned === jobId ? null : jobId;
    table.querySelectorAll("tr.pinned").forEach(function (tr) { tr.classList.remove("pinned"); });
    var tr = pinned && table.querySelector('tr[data-job="' + pinned + '"]');
    if (tr) { tr.classList.add("pinned"); if (scroll) tr.scrollIntoView({ block: "nearest" }); }
    focusJob(pinned);
  }
  var jobs = Array.prototype.map.call(table.querySelectorAll("tbody tr[data-job]"), function (tr) {
    return Number(tr.getAttribute("data-job"));
  });
  var curves = window.labyardSweepCurves && new window.labyardSweepCurves.SweepCurves(box, {
    sweepId: sweepId, bestId: bestId, jobs: jobs,
    metrics: JSON.parse(box.getAttribute("data-metrics") || "[]"),
    selected: selectedJobs,
    onHover: function (jobId, slot) { focusJob(jobId || pinned, jobId ? slot : null); },
    onPin: function (jobId) { pin(jobId, true); }
  });
  jobs.forEach(function (id) {  // the table is the legend: each row's swatch in its job's colour
    var swatch = table.querySelector('tr[data-job="' + id + '"] .swatch');
    if (swatch && curves) swatch.style.background = curves.stroke[id];
  });
  // ---------------------------------------------------------------- param vs metric
  // One point per job: x the chosen param (categories in sorted order when not numbers),
  // y the best value of the chosen metric; clicking a point pins the job's row.
  var scatterBox = document.getElementById("sweep-scatter");
  var scatterSelect = document.getElementById("sweep-scatter-param");
  var scatterMetric = document.getElementById("sweep-scatter-metric");
  var compared = null, scatter = null, scatterJobs = [];
  function drawScatter() {
    if (!scatterBox || !scatterSelect || !scatterMetric || !compared || typeof uPlot === "undefined") return;
    var param = scatterSelect.value, metric = scatterMetric.value, title = metric + " vs " + param;
    var rows = compared.jobs.filter(function (j) { return j.metrics[metric] && param in j.params; });
    var numeric = rows.every(function (j) { return typeof j.params[param] === "number"; }), cats = [];
    if (!numeric) {
      rows.forEach(function (j) { var k = String(j.params[param]); if (cats.indexOf(k) < 0) cats.push(k); });
      cats.sort();
    }
    var pts = rows.map(function (j) {
      return { x: numeric ? j.params[param] : cats.indexOf(String(j.params[param])), y: j.metrics[metric].best, id: j.id };
    }).sort(function (a, b) { return a.x - b.x || a.id - b.id; });
    if (scatter && (scatter.o.title !== title || !pts.length)) { scatter.destroy(); scatter = null; }
    scatterBox.textContent = "";
    if (!pts.length) {
      var p = document.createElement("p"); p.className = "muted";
      p.textContent = metric ? "No job has both " + param + " and " + metric + "." : "No values yet.";
      scatterBox.appendChild(p); return;
    }
    if (!scatter) {
      scatter = new window.labyardCharts.Panel(scatterBox, {
        title: title, file: "sweep" + sweepId + "-" + metric + "-vs-" + param,
        attrs: { "data-param": param, "data-metric": metric, "data-kind": "scatter" }
      });
    }
    scatterBox.appendChild(scatter.wrap);
    scatterJobs = pts.map(function (q) { return q.id; });
    var label = function (v) { return numeric ? String(v) : cats[v]; };
    scatter.set({
      xName: param, yName: metric + " (best)", xText: label,
      series: [{ name: metric, x: pts.map(function (q) { return q.x; }), y: pts.map(function (q) { return q.y; }), stroke: "#3b5bdb", scatter: true }],
      extra: function (opts) {
        opts.cursor.drag = { x: true, y: false };
        if (numeric) return;
        opts.axes[0].incrs = window.labyardCharts.INCRS;
        opts.axes[0].values = function (u, ticks) { return ticks.map(function (t) { return cats[t] === undefined ? "" : cats[t]; }); };
        opts.scales.x.range = function () { return [-0.5, cats.length - 0.5]; };
        opts.series[0].value = function (u, v) { return v === null || v === undefined ? "–" : label(v); };
      },
      created: function (u) {
        u.over.addEventListener("click", function () {
          var i = u.cursor.idx;
          if (i !== null && i !== undefined && scatterJobs[i]) pin(scatterJobs[i], true);
        });
      }
    });
  }
  function loadCompared() {  // the page carries the compare API's answer
    var data = document.getElementById("sweep-compare");
    if (!data) return;
    compared = JSON.parse(data.textContent);
    drawParcoords();
    drawScatter();
  }
  if (scatterSelect) scatterSelect.addEventListener("change", drawScatter);
  if (scatterMetric) scatterMetric.addEventListener("change", drawScatter);

  // ---------------------------------------------------------------- selection
  // Ticked rows: only their curves are drawn (all of them when none is ticked).
  function selectedJobs() {
    var picked = null;
    table.querySelectorAll("input[name=job_ids]:checked").forEach(function (b) { (picked = picked || {})[b.value] = true; });
    return picked;
  }
  table.addEventListener("change", function (e) {
    if (e.target.name === "job_ids" && curves) curves.drawAll();
  });

  // ---------------------------------------------------------------- parallel coordinates
  // Axes: the sweep's params, then the chosen metric (best or latest). The table below is
  // its numbers: rows outside the brushes are hidden, and a line says how many are shown.
  var pcBox = document.getElementById("parcoords"), pc = null;
  var pcMetric = document.getElementById("pc-metric"), pcStat = document.getElementById("pc-stat");
  var shownLine = document.getElementById("sweep-shown-line"), shownText = document.getElementById("sweep-shown");
  function filterTable(ids, brushes) {
    var keep = ids && {}, rows = table.querySelectorAll("tbody tr[data-job]"), n = 0;
    (ids || []).forEach(function (id) { keep[id] = true; });
    rows.forEach(function (tr) {
      var hide = !!keep && !keep[tr.getAttribute("data-job")];
      tr.hidden = hide;
      if (!hide) n++;
    });
    shownText.textContent = n + " of " + rows.length + " jobs shown";
    shownLine.hidden = !brushes;
  }
  function drawParcoords() {
    if (!pcBox || !compared || !window.labyardParcoords) return;
    var params = JSON.parse(pcBox.getAttribute("data-params") || "[]");
    var metric = pcMetric ? pcMetric.value : "", stat = pcStat ? pcStat.value : "best";
    var axes = params.map(function (p) { return { name: "param:" + p, label: p }; });
    if (metric) axes.push({ name: "metric", label: metric + " (" + stat + ")" });
    var jobs = compared.jobs.map(function (j) {
      var values = { metric: j.metrics[metric] ? j.metrics[metric][stat] : null };
      params.forEach(function (p) { values["param:" + p] = j.params[p]; });
      return { id: j.id, values: values };
    });
    if (!pc) {
      pc = pcBox.pc = new window.labyardParcoords.Parcoords(pcBox, { onFilter: filterTable });
      document.getElementById("pc-clear").addEventListener("click", function () { pc.clear(); });
    }
    pc.set({ axes: axes, jobs: jobs, color: metric ? "metric" : null });
  }
  function newMetricAxis() {  // the last axis means something else now: its brush goes
    if (!pc) return;
    delete pc.brushes[pc.axes.length - 1];
    drawParcoords();
  }
  if (pcMetric) pcMetric.addEventListener("change", newMetricAxis);
  if (pcStat) pcStat.addEventListener("change", newMetricAxis);
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { if (pc) pc.draw(); if (curves) curves.resize(); }, 150);
  });

  table.addEventListener("mouseover", function (e) {
    var tr = e.target.closest && e.target.closest("tr[data-job]");
    if (!tr) return;
    var jobId = Number(tr.getAttribute("data-job"));
    if (pc) pc.highlight(jobId);
    focusJob(jobId);
  });
  table.addEventListener("mouseleave", function () { focusJob(pinned); if (pc) pc.highlight(pinned); });
  table.addEventListener("click", function (e) {
    if (e.target.closest("a, input, button, th")) return;
    var tr = e.target.closest("tr[data-job]");
    if (tr) pin(Number(tr.getAttribute("data-job")), false);
  });
  if (smoothInput) smoothInput.addEventListener("input", function () {
    document.getElementById("sweep-smooth-value").textContent = smoothInput.value;
    if (!curves) return;
    curves.smooth = parseFloat(smoothInput.value) || 0;
    curves.drawAll();
  });
  // ---------------------------------------------------------------- live
  // While a job of the sweep is queued or running, every 10 s: statuses, the panels'
  // curves, the scatter and the parallel coordinates follow (the table's values are the
  // page's; a reload shows the final ones).
  var LIVE = ["queued", "starting", "running"];
  function isLive(body) {
    return body && body.jobs.some(function (j) { return LIVE.indexOf(j.status) >= 0; });
  }
  function showStatuses(body) {
    body.jobs.forEach(function (j) {
      var badge = table.querySelector('tr[data-job="' + j.id + '"] .badge[class*="status-"]');
      if (!badge || badge.textContent === j.status) return;
      badge.className = "badge status-" + j.status;
      badge.textContent = j.status;
    });
  }
  function followLive() {
    if (!isLive(compared)) return;
    setTimeout(function () {
      fetch("/api/v1/sweeps/" + sweepId + "/compare", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (body) {
            compared = body;
            showStatuses(body);
            if (curves) curves.reload();
            drawScatter();
            drawParcoords();
          }
          followLive();
        }, followLive);
    }, 10000);
  }
  loadCompared();
  followLive();
})();
