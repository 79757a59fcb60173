// The sweep page: a sortable table that is the chart's legend, all curves overlaid in one
// panel (static/js/charts.js: log scale, zoom, PNG/CSV, numbers table); ticked rows overlay
// only their curves; parallel coordinates (static/js/parcoords.js) whose brushes filter the
// table; a param-vs-metric scatter.
(function () {
  "use strict";
  var box = document.getElementById("sweep-chart");
  var table = document.getElementById("sweep-table");
  if (!box || !table) return;
  var sweepId = box.getAttribute("data-sweep"), bestId = Number(box.getAttribute("data-best"));
  var plot = null, seriesOfJob = {}, jobOfSeries = {}, curves = [], metricNow = "", pinned = null;
  var smoothInput = document.getElementById("sweep-smooth");

  function color(i) { return "hsl(" + Math.round((i * 137.508) % 360) + ",65%,45%)"; }

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

  // ---------------------------------------------------------------- chart
  function highlight(jobId) {
    table.querySelectorAll("tr.focus").forEach(function (tr) { tr.classList.remove("focus"); });
    if (jobId) {
      var tr = table.querySelector('tr[data-job="' + jobId + '"]');
      if (tr) tr.classList.add("focus");
    }
  }
  function focusJob(jobId) {  // the curve of this job in front (null: all), its row marked
    if (!plot) return;
    var idx = jobId ? seriesOfJob[jobId] : null;
    plot.setSeries(idx || null, { focus: true });
    highlight(idx ? jobId : null);
  }
  function pin(jobId, scroll) {  // click: keep a job highlighted until clicked again
    pinned = pinned === jobId ? null : jobId;
    table.querySelectorAll("tr.pinned").forEach(function (tr) { tr.classList.remove("pinned"); });
    var tr = pinned && table.querySelector('tr[data-job="' + pinned + '"]');
    if (tr) { tr.classList.add("pinned"); if (scroll) tr.scrollIntoView({ block: "nearest" }); }
    focusJob(pinned);
  }
  var panel = null, readout = null;
  function draw() {
    var metric = metricNow;
    var weight = parseFloat(smoothInput ? smoothInput.value : "0") || 0;
    if (panel && (!curves.length || panel.o.title !== metric)) { panel.destroy(); panel = null; plot = null; }
    box.textContent = "";
    seriesOfJob = {}; jobOfSeries = {};
    if (!curves.length || typeof uPlot === "undefined") {
      var p = document.createElement("p"); p.className = "muted"; p.textContent = "No " + metric + " values yet.";
      box.appendChild(p); return;
    }
    var picked = selectedJobs(), shown = [];
    var specs = curves.map(function (c, i) {  // colours by place in the sweep: stable on selection
      var best = c.job_id === bestId, stroke = best ? "#000" : color(i);
      var tr = table.querySelector('tr[data-job="' + c.job_id + '"] .swatch');
      if (tr) tr.style.background = stroke;
      return { name: "job " + c.job_id, x: c.x, y: c.y, stroke: stroke, width: best ? 3 : 1, job: c.job_id };
    }).filter(function (s) { return !picked || picked[s.job]; });
    specs.forEach(function (s, i) { seriesOfJob[s.job] = i + 1; jobOfSeries[i + 1] = s.job; shown.push(s.job); });
    if (!specs.length) {
      var none = document.createElement("p"); none.className = "muted"; none.textContent = "No " + metric + " values for the selected jobs.";
      if (panel) { panel.destroy(); panel = null; plot = null; }
      box.appendChild(none); return;
    }
    if (!panel) {
      panel = new window.labyardCharts.Panel(box, {
        title: metric, file: "sweep" + sweepId + "-" + metric, legend: false, height: 320,
        attrs: { "data-metric": metric }
      });
      readout = document.createElement("p");
      readout.className = "chart-readout muted";
      readout.setAttribute("aria-live", "off");
      panel.wrap.insertBefore(readout, panel.area.nextSibling);
    }
    box.appendChild(panel.wrap);
    panel.wrap.setAttribute("data-jobs", shown.join(","));
    panel.set({
      xName: curves[0].x_name || "x", yName: metric, smooth: weight, series: specs,
      extra: function (opts) {
        opts.focus = { alpha: 0.15 };
        opts.cursor.focus = { prox: 12 };
        opts.hooks.setSeries = [function (u, idx) { highlight(idx ? jobOfSeries[idx] : pinned); }];
        opts.hooks.setCursor = [showValue];
      },
      created: function (u) {
        plot = u;
        u.over.addEventListener("click", function () {  // click a curve: pin it, show its row
          var focused = null;
          u.series.forEach(function (s, i) { if (i && s._focus) focused = jobOfSeries[i]; });
          if (focused) pin(focused, true);
        });
      }
    });
    if (pinned) focusJob(pinned);
  }
  // The legend is the table; under the chart, the value of the job nearest the cursor.
  function showValue(u) {
    var i = u.cursor.idx;
    if (i === null || i === undefined) { readout.textContent = ""; return; }
    var best = null, top = u.cursor.top, x = u.data[0][i];
    for (var k = 1; k < u.series.length; k++) {
      var v = u.data[k][i];
      if (v === null || v === undefined || !u.series[k].show) continue;
      var d = Math.abs(u.valToPos(v, "y") - top);
      if (!best || d < best.d) best = { d: d, k: k, v: v };
    }
    readout.textContent = u.series[0].label + " " + x + (best ? " · " + u.series[best.k].label + ": " + window.labyardCharts.fmt(best.v) : "");
  }
  function load() {
    var metric = document.getElementById("sweep-metric").value;
    if (!metric) return;
    fetch("/api/v1/sweeps/" + sweepId + "/curves?points=300&metric=" + encodeURIComponent(metric), { credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (body) {
          if (!r.ok) throw window.labyardProblem(body, r.status);
          return body;
        });
      }, function () { throw window.labyardProblem(null, 0); })
      .then(function (body) { curves = body.curves || []; metricNow = metric; draw(); drawScatter(); })
      .catch(function (problem) {
        var p = document.createElement("p");
        p.className = "form-error"; p.setAttribute("role", "alert");
        p.textContent = typeof problem === "string" ? problem : window.labyardProblem(null, 500);
        box.textContent = ""; box.appendChild(p);
      });
  }
  // ---------------------------------------------------------------- param vs metric
  // One point per job: x the chosen param (categories in sorted order when not numbers),
  // y the best value of the chosen metric; clicking a point pins the job's row.
  var scatterBox = document.getElementById("sweep-scatter");
  var scatterSelect = document.getElementById("sweep-scatter-param");
  var compared = null, scatter = null, scatterJobs = [];
  function drawScatter() {
    if (!scatterBox || !scatterSelect || !compared || !metricNow || typeof uPlot === "undefined") return;
    var param = scatterSelect.value, metric = metricNow, title = metric + " vs " + param;
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
      var p = document.createElement("p"); p.className = "muted"; p.textContent = "No job has both " + param + " and " + metric + ".";
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

  // ---------------------------------------------------------------- selection
  // Ticked rows: only their curves are drawn (all of them when none is ticked).
  function selectedJobs() {
    var picked = null;
    table.querySelectorAll("input[name=job_ids]:checked").forEach(function (b) { (picked = picked || {})[b.value] = true; });
    return picked;
  }
  table.addEventListener("change", function (e) {
    if (e.target.name === "job_ids" && curves.length) draw();
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
    resizing = setTimeout(function () { if (pc) pc.draw(); }, 150);
  });

  table.addEventListener("mouseover", function (e) {
    var tr = e.target.closest && e.target.closest("tr[data-job]");
    if (tr && pc) pc.highlight(Number(tr.getAttribute("data-job")));
    if (!tr || !plot) return;
    var idx = seriesOfJob[Number(tr.getAttribute("data-job"))];
    if (idx) plot.setSeries(idx, { focus: true });
  });
  table.addEventListener("mouseleave", function () { focusJob(pinned); if (pc) pc.highlight(pinned); });
  table.addEventListener("click", function (e) {
    if (e.target.closest("a, input, button, th")) return;
    var tr = e.target.closest("tr[data-job]");
    if (tr) pin(Number(tr.getAttribute("data-job")), false);
  });
  if (smoothInput) smoothInput.addEventListener("input", function () {
    document.getElementById("sweep-smooth-value").textContent = smoothInput.value;
    if (curves.length) draw();
  });
  var select = document.getElementById("sweep-metric");
  if (select) select.addEventListener("change", load);
  load();
  loadCompared();
})();
