// The sweep page's curves: one panel per metric name (static/js/charts.js Panel: log scale,
// zoom, PNG/CSV, numbers table), every job overlaid in each, in a grid. A panel fetches its
// curves when it comes near the viewport, so a sweep with many metrics stays fast. The table
// is the legend: colours are stable per job across panels, ticked rows overlay only their
// curves, hovering a job (row or curve) highlights it in every panel, and the best job is bold.
(function () {
  "use strict";

  function color(i) { return "hsl(" + Math.round((i * 137.508) % 360) + ",65%,45%)"; }
  function note(text, cls) {
    var p = document.createElement("p");
    p.className = cls || "muted";
    p.textContent = text;
    return p;
  }

  // box: the grid; o: {sweepId, bestId, metrics, jobs (ids in the sweep's order),
  // selected() -> {id: true} or null, onHover(jobId or null), onPin(jobId)}
  function SweepCurves(box, o) {
    this.box = box; this.o = o; this.smooth = 0; this.slots = []; this.focused = null;
    this.stroke = {};
    var self = this;
    o.jobs.forEach(function (id, i) { self.stroke[id] = id === o.bestId ? "#000" : color(i); });
    var seen = "IntersectionObserver" in window && new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (!e.isIntersecting) return;
        seen.unobserve(e.target);
        self.load(self.slotOf(e.target));
      });
    }, { rootMargin: "300px 0px" });
    o.metrics.forEach(function (metric) {
      var el = document.createElement("div");
      el.className = "sweep-slot loading";  // as tall as a panel, so few load at once
      el.setAttribute("data-slot", metric);
      el.appendChild(note("Loading " + metric + "…"));
      box.appendChild(el);
      var slot = { metric: metric, el: el, curves: null, panel: null, plot: null, readout: null, seriesOfJob: {}, jobOfSeries: {} };
      self.slots.push(slot);
      if (seen) seen.observe(el); else self.load(slot);
    });
  }

  SweepCurves.prototype.slotOf = function (el) {
    return this.slots.filter(function (s) { return s.el === el; })[0];
  };

  SweepCurves.prototype.load = function (slot) {
    var self = this;
    fetch("/api/v1/sweeps/" + this.o.sweepId + "/curves?points=300&metric=" + encodeURIComponent(slot.metric), { credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (body) {
          if (!r.ok) throw window.labyardProblem(body, r.status);
          return body;
        });
      }, function () { throw window.labyardProblem(null, 0); })
      .then(function (body) { slot.curves = body.curves || []; slot.el.classList.remove("loading"); self.draw(slot); })
      .catch(function (problem) {
        var p = note(typeof problem === "string" ? problem : window.labyardProblem(null, 500), "form-error");
        p.setAttribute("role", "alert");
        slot.el.classList.remove("loading");
        slot.el.textContent = ""; slot.el.appendChild(p);
      });
  };

  // Fetch again the curves of every panel already shown (a running sweep's new points).
  SweepCurves.prototype.reload = function () {
    var self = this;
    this.slots.forEach(function (slot) { if (slot.curves) self.load(slot); });
  };

  SweepCurves.prototype.drawAll = function () {
    var self = this;
    this.slots.forEach(function (slot) { if (slot.curves) self.draw(slot); });
  };

  SweepCurves.prototype.drop = function (slot, text) {  // no curve to draw: a line instead
    if (slot.panel) { slot.panel.destroy(); slot.panel = null; slot.plot = null; }
    slot.el.textContent = "";
    var title = document.createElement("h3");
    title.className = "sweep-slot-title";
    title.textContent = slot.metric;
    slot.el.appendChild(title);
    slot.el.appendChild(note(text));
  };

  SweepCurves.prototype.draw = function (slot) {
    var self = this, metric = slot.metric;
    slot.seriesOfJob = {}; slot.jobOfSeries = {};
    if (!slot.curves.length || typeof uPlot === "undefined") return this.drop(slot, "No values yet.");
    var picked = this.o.selected(), shown = [];
    var specs = slot.curves.filter(function (c) { return !picked || picked[c.job_id]; }).map(function (c) {
      var best = c.job_id === self.o.bestId;
      return { name: "job " + c.job_id, x: c.x, y: c.y, stroke: self.stroke[c.job_id] || "#888", width: best ? 3 : 1, job: c.job_id };
    });
    specs.forEach(function (s, i) { slot.seriesOfJob[s.job] = i + 1; slot.jobOfSeries[i + 1] = s.job; shown.push(s.job); });
    if (!specs.length) return this.drop(slot, "No values for the selected jobs.");
    if (!slot.panel) {
      slot.el.textContent = "";
      slot.panel = new window.labyardCharts.Panel(slot.el, {
        title: metric, file: "sweep" + this.o.sweepId + "-" + metric, legend: false, height: 280,
        attrs: { "data-metric": metric }
      });
      slot.readout = note("", "chart-readout muted");
      slot.readout.setAttribute("aria-live", "off");
      slot.panel.wrap.insertBefore(slot.readout, slot.panel.area.nextSibling);
    }
    slot.panel.wrap.setAttribute("data-jobs", shown.join(","));
    slot.panel.set({
      xName: slot.curves[0].x_name || "x", yName: metric, smooth: this.smooth, series: specs,
      extra: function (opts) {
        opts.focus = { alpha: 0.15 };
        opts.cursor.focus = { prox: 12 };
        opts.hooks.setSeries = [function (u, idx) { self.o.onHover(idx ? slot.jobOfSeries[idx] : null, slot); }];
        opts.hooks.setCursor = [function (u) { showValue(u, slot.readout); }];
      },
      created: function (u) {
        slot.plot = u;
        u.over.addEventListener("click", function () {  // click a curve: pin it, show its row
          var focused = null;
          u.series.forEach(function (s, i) { if (i && s._focus) focused = slot.jobOfSeries[i]; });
          if (focused) self.o.onPin(focused);
        });
      }
    });
    if (this.focused && slot.plot) slot.plot.setSeries(slot.seriesOfJob[this.focused] || null, { focus: true }, false);
  };

  // The job's curve in front in every panel (null: all alike); `except` is the panel the
  // cursor is on, which uPlot has focused already. No setSeries hook fires from here.
  SweepCurves.prototype.focus = function (jobId, except) {
    this.focused = jobId;
    this.slots.forEach(function (slot) {
      if (!slot.plot || slot === except) return;
      slot.plot.setSeries((jobId && slot.seriesOfJob[jobId]) || null, { focus: true }, false);
    });
  };

  SweepCurves.prototype.resize = function () {
    this.slots.forEach(function (slot) { if (slot.panel) slot.panel.resize(); });
  };

  // The legend is the table; under a panel, the value of the job nearest the cursor.
  function showValue(u, readout) {
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

  window.labyardSweepCurves = { SweepCurves: SweepCurves };
})();
