// The search page: the best value so far vs trials ended, every trial's curve of the metric over
// the resource (pruned ones dimmed, a mark where they were pruned), parallel coordinates of
// params vs value (static/js/parcoords.js) whose brushes filter the trials table, parameter
// importances as bars (fetched after the page loaded). The page's data is the JSON in the
// data-boot of #search-live, the block htmx refreshes every 10 s while the search runs (htmx
// drops <script> elements from what it swaps in); the charts' boxes are kept across refreshes
// (hx-preserve) and redrawn from the new data.
(function () {
  "use strict";
  if (!document.getElementById("search-live")) return;
  var data = null, bestPanel = null, curvePanel = null, pc = null, importancesAt = null;
  var WARN = "#d9480f";

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function note(box, text, cls) { box.textContent = ""; box.appendChild(el("p", cls || "muted", text)); }
  function cssVar(name, dflt) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || dflt;
  }
  function color(i) { return "hsl(" + Math.round((i * 137.508) % 360) + ",65%,45%)"; }
  function fmt(v) { return window.labyardCharts ? window.labyardCharts.fmt(v) : String(v); }
  function problem(body, status) {
    return window.labyardProblem ? window.labyardProblem(body, status) : "That did not work.";
  }
  function labelOf(t) { return data.labels[String(t.number)] || "#" + (t.number + 1); }
  function bestNumber() { return data.search.best ? data.search.best.number : null; }
  function drawable() { return typeof uPlot !== "undefined" && window.labyardCharts; }

  // ---------------------------------------------------------------- best so far
  // x: trials ended (complete, pruned or failed, in the order they ended); y: the best value
  // of the completed ones so far (none until one completed).
  function bestSoFar() {
    var ended = data.trials.filter(function (t) { return t.state !== "running"; });
    ended.sort(function (a, b) {
      return (a.finished_at || "").localeCompare(b.finished_at || "") || a.number - b.number;
    });
    var max = data.search.settings.goal === "maximize", best = null, xs = [], ys = [];
    ended.forEach(function (t, i) {
      if (t.state === "complete" && t.value !== null && (best === null || (max ? t.value > best : t.value < best))) best = t.value;
      xs.push(i + 1); ys.push(best);
    });
    return { x: xs, y: ys };
  }
  function drawBest() {
    var box = document.getElementById("search-best-chart"), line = bestSoFar();
    if (!box || !drawable()) return;
    if (!line.y.some(function (v) { return v !== null; })) {
      if (bestPanel) { bestPanel.destroy(); bestPanel = null; }
      return note(box, "No trial has completed yet.");
    }
    var metric = data.search.settings.metric;
    if (!bestPanel) {
      box.textContent = "";
      bestPanel = new window.labyardCharts.Panel(box, {
        title: "Best " + metric, file: "search" + data.search.id + "-best", legend: false, height: 240,
        attrs: { "data-kind": "best" }
      });
    }
    bestPanel.set({
      xName: "trials ended", yName: "best " + metric,
      series: [{ name: "best so far", x: line.x, y: line.y, stroke: cssVar("--accent", "#3b5bdb"), width: 2 }],
      extra: function (opts) {
        opts.axes[0].incrs = window.labyardCharts.INCRS;
        opts.series[1].paths = uPlot.paths.stepped({ align: 1 });
      }
    });
  }

  // ---------------------------------------------------------------- curves
  function trialSeries() {
    var best = bestNumber(), text = cssVar("--text", "#000");
    return data.trials.filter(function (t) { return Object.keys(t.steps || {}).length; }).map(function (t) {
      var xs = Object.keys(t.steps).map(Number).sort(function (a, b) { return a - b; });
      var pruned = t.state === "pruned", top = t.number === best;
      return {
        name: labelOf(t) + (pruned && t.pruned_step !== null ? " (pruned at " + t.pruned_step + ")" : ""),
        x: xs, y: xs.map(function (x) { return t.steps[String(x)]; }),
        stroke: top ? text : pruned ? "rgba(134,142,150,0.45)" : color(t.number),
        width: top ? 3 : pruned ? 1 : 1.5, trial: t
      };
    });
  }
  function markPruned(opts, specs) {  // a mark at the step where each pruned trial stopped
    specs.forEach(function (s, i) {
      if (s.trial.state !== "pruned" || s.trial.pruned_step === null) return;
      var at = s.trial.pruned_step;
      opts.series[i + 1].points = {
        show: false, size: 9, width: 2, fill: WARN, stroke: WARN,
        filter: function (u) { var k = u.data[0].indexOf(at); return k < 0 ? null : [k]; }
      };
    });
  }
  function drawCurves() {
    var box = document.getElementById("search-curves");
    if (!box || !drawable()) return;
    var specs = trialSeries(), s = data.search.settings;
    if (!specs.length) {
      if (curvePanel) { curvePanel.destroy(); curvePanel = null; }
      return note(box, "No values yet: trials report " + s.metric + " per " + s.resource + " as they run.");
    }
    if (!curvePanel) {
      box.textContent = "";
      curvePanel = new window.labyardCharts.Panel(box, {
        title: s.metric, file: "search" + data.search.id + "-" + s.metric, legend: false, height: 240,
        attrs: { "data-kind": "curves", "data-metric": s.metric }
      });
      curvePanel.readout = el("p", "chart-readout muted", "");
      curvePanel.wrap.insertBefore(curvePanel.readout, curvePanel.area.nextSibling);
    }
    curvePanel.wrap.setAttribute("data-trials", specs.map(function (p) { return p.trial.number; }).join(","));
    curvePanel.wrap.setAttribute("data-pruned", specs.filter(function (p) { return p.trial.state === "pruned"; }).map(function (p) { return p.trial.number; }).join(","));
    curvePanel.set({
      xName: s.resource, yName: s.metric, series: specs,
      extra: function (opts) {
        opts.focus = { alpha: 0.2 };
        opts.cursor.focus = { prox: 12 };
        opts.hooks.setCursor = [function (u) { readout(u, curvePanel.readout); }];
        markPruned(opts, specs);
      }
    });
  }
  // Under the panel: the resource step and the trial nearest the cursor, with its value.
  function readout(u, out) {
    var i = u.cursor.idx;
    if (i === null || i === undefined) { out.textContent = ""; return; }
    var near = null;
    for (var k = 1; k < u.series.length; k++) {
      var v = u.data[k][i];
      if (v === null || v === undefined) continue;
      var d = Math.abs(u.valToPos(v, "y") - u.cursor.top);
      if (!near || d < near.d) near = { d: d, k: k, v: v };
    }
    out.textContent = u.series[0].label + " " + u.data[0][i] + (near ? " · " + u.series[near.k].label + ": " + fmt(near.v) : "");
  }

  // ---------------------------------------------------------------- parallel coordinates
  function filterTable(ids, brushes) {
    var keep = ids && {}, n = 0, rows = document.querySelectorAll("#search-trials tbody tr[data-trial]");
    (ids || []).forEach(function (id) { keep[id] = true; });
    rows.forEach(function (tr) {
      var hide = !!keep && !keep[tr.getAttribute("data-trial")];
      tr.hidden = hide;
      if (!hide) n++;
    });
    var line = document.getElementById("search-shown-line"), text = document.getElementById("search-shown");
    if (text) text.textContent = n + " of " + rows.length + " trials shown";
    if (line) line.hidden = !brushes;
  }
  function drawParcoords() {
    var box = document.getElementById("parcoords");
    if (!box || !window.labyardParcoords) return;
    if (!data.trials.length) { pc = null; return note(box, "No trials yet."); }
    var space = data.search.space, metric = data.search.settings.metric;
    var params = Object.keys(space).filter(function (p) { return space[p].kind !== "fixed"; });
    var axes = params.map(function (p) { return { name: "param:" + p, label: p }; });
    axes.push({ name: "value", label: metric });
    var rows = data.trials.map(function (t) {
      var values = { value: t.value };
      params.forEach(function (p) { values["param:" + p] = t.params[p]; });
      return { id: t.number, values: values };
    });
    if (!pc) {
      box.textContent = "";
      pc = box.pc = new window.labyardParcoords.Parcoords(box, { onFilter: filterTable });
    }
    pc.set({ axes: axes, jobs: rows, color: "value" });
  }

  // ---------------------------------------------------------------- importances
  function showImportances(found) {
    var box = document.getElementById("search-importances");
    var names = Object.keys(found).sort(function (a, b) { return found[b] - found[a]; });
    if (!names.length) return note(box, "Importances appear once two trials with different params have completed.");
    box.textContent = "";
    names.forEach(function (name) {
      var row = el("div", "imp-row"), bar = el("progress");
      row.setAttribute("data-param", name);
      bar.max = 1; bar.value = found[name];
      bar.setAttribute("aria-label", "Importance of " + name);
      row.appendChild(el("span", "imp-name", name)).title = name;
      row.appendChild(bar);
      row.appendChild(el("span", "num", fmt(found[name])));
      box.appendChild(row);
    });
  }
  function loadImportances() {
    var box = document.getElementById("search-importances"), complete = data.search.counts.complete;
    if (!box || importancesAt === complete) return;
    importancesAt = complete;
    fetch("/api/v1/searches/" + data.search.id + "/importances", { credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (body) {
          if (!r.ok) throw problem(body, r.status);
          return body;
        });
      }, function () { throw problem(null, 0); })
      .then(showImportances, function (text) {
        importancesAt = null;
        note(box, typeof text === "string" ? text : problem(null, 500), "form-error");
      });
  }

  // ---------------------------------------------------------------- refresh
  function updateActions() {
    var state = data.search.state;
    var stop = document.getElementById("search-stop");
    var resume = document.querySelector("#search-resume button[type=submit]");
    if (stop) stop.disabled = state !== "running";
    if (resume) resume.disabled = state === "stopping";
  }
  var loaded = null;  // the #search-live block drawn last
  function load() {
    loaded = document.getElementById("search-live");
    data = JSON.parse(loaded.getAttribute("data-boot"));
    updateActions();
    drawBest();
    drawCurves();
    drawParcoords();
    if (pc) pc.apply();  // the new table rows follow the brushes
    loadImportances();
  }
  document.addEventListener("htmx:afterSettle", function () {  // a refresh or an action's answer
    var now = document.getElementById("search-live");
    if (now && now !== loaded) load();
  });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      if (pc) pc.draw();
      [bestPanel, curvePanel].forEach(function (p) { if (p) p.resize(); });
    }, 150);
  });
  document.addEventListener("click", function (e) {
    if (e.target && e.target.id === "pc-clear" && pc) pc.clear();
  });
  load();
})();
