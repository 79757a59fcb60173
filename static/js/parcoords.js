// Parallel coordinates (SVG) for the sweep page: one vertical axis per param and a last one for
// a metric, one polyline per job coloured by that metric. Dragging on an axis brushes a range;
// brushes on several axes combine (a job must be inside every one). Our own small code: the
// page may not load anything from the internet, and no charting library we ship draws these.
//
//   var pc = new labyardParcoords.Parcoords(box, {onFilter: function (ids, brushes) {}});
//   pc.set({axes: [{name, label}], jobs: [{id, values: {name: value}}], color: "axis name"});
//   pc.clear();             // every brush off (also Escape inside the chart)
//   pc.brush(i, lo, hi);    // brush axis i from fraction lo to hi (0 bottom, 1 top)
//   pc.highlight(id);       // one job's line bold and in front (null: none)
// onFilter gets the ids inside every brush (null when no brush is set).
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var HEIGHT = 300, TOP = 34, BOTTOM = 22, SIDE = 56, HIT = 28;

  function node(tag, attrs, parent) {
    var n = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(n);
    return n;
  }
  function fmt(v) { return window.labyardCharts ? window.labyardCharts.fmt(v) : String(v); }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function text(v) { return typeof v === "string" ? v : JSON.stringify(v); }

  // An axis' scale: pos(value) is a fraction (0 bottom, 1 top) or null when the job has none.
  // Numbers are linear (log when positive over two decades or more); anything else is a
  // category, evenly spaced in sorted order.
  function scale(values) {
    var present = values.filter(function (v) { return v !== undefined && v !== null; });
    if (present.length && present.every(isNum)) {
      var lo = Math.min.apply(null, present), hi = Math.max.apply(null, present);
      var log = lo > 0 && hi / lo >= 100, f = log ? Math.log : function (x) { return x; };
      var a = f(lo), span = f(hi) - a;
      var pos = function (v) { return isNum(v) ? (span ? (f(v) - a) / span : 0.5) : null; };
      var mid = log ? Math.sqrt(lo * hi) : (lo + hi) / 2;
      var ticks = lo === hi ? [[0.5, fmt(lo)]] : [[0, fmt(lo)], [0.5, fmt(mid)], [1, fmt(hi)]];
      return { kind: log ? "log" : "linear", pos: pos, ticks: ticks };
    }
    var cats = [];
    present.forEach(function (v) { var k = text(v); if (cats.indexOf(k) < 0) cats.push(k); });
    cats.sort();
    var at = function (i) { return cats.length > 1 ? 1 - i / (cats.length - 1) : 0.5; };
    return {
      kind: "category",
      pos: function (v) { var i = v === undefined || v === null ? -1 : cats.indexOf(text(v)); return i < 0 ? null : at(i); },
      ticks: cats.map(function (c, i) { return [at(i), c]; })
    };
  }
  // Low metric values blue, high red.
  function colour(f) { return f === null ? "#9aa1ad" : "hsl(" + Math.round(230 - 225 * f) + ",70%,45%)"; }

  function Parcoords(box, options) {
    this.box = box; this.options = options || {};
    this.brushes = {};  // axis index -> [lo, hi] fractions
    this.axes = []; this.rows = []; this.paths = [];
    var self = this;
    box.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { self.clear(); e.preventDefault(); }
      var i = e.target.getAttribute && e.target.getAttribute("data-axis");
      if (i === null || i === undefined) return;
      if (e.key === "Delete" || e.key === "Backspace") { delete self.brushes[i]; self.apply(); e.preventDefault(); }
      if (e.key === "ArrowUp" || e.key === "ArrowDown") { self.nudge(i, e.key === "ArrowUp" ? 1 : -1, e.shiftKey); e.preventDefault(); }
    });
  }
  // spec: {axes: [{name, label}], jobs: [{id, values}], color: axis name}
  Parcoords.prototype.set = function (spec) {
    this.spec = spec;
    var colorAt = spec.axes.map(function (a) { return a.name; }).indexOf(spec.color);
    this.axes = spec.axes.map(function (a) {
      var s = scale(spec.jobs.map(function (j) { return j.values[a.name]; }));
      s.name = a.name; s.label = a.label || a.name;
      return s;
    });
    var axes = this.axes;
    this.rows = spec.jobs.map(function (j) {
      var fr = axes.map(function (a) { return a.pos(j.values[a.name]); });
      return { id: j.id, fr: fr, stroke: colour(colorAt < 0 ? null : fr[colorAt]) };
    });
    var kept = {};
    Object.keys(this.brushes).forEach(function (k) { if (k < axes.length) kept[k] = this.brushes[k]; }, this);
    this.brushes = kept;
    this.draw();
  };
  Parcoords.prototype.x = function (i) {
    var n = this.axes.length, w = this.width - 2 * SIDE;
    return n > 1 ? SIDE + (i * w) / (n - 1) : this.width / 2;
  };
  Parcoords.prototype.y = function (f) { return TOP + (1 - f) * (HEIGHT - TOP - BOTTOM); };
  Parcoords.prototype.frac = function (y) {
    return Math.max(0, Math.min(1, 1 - (y - TOP) / (HEIGHT - TOP - BOTTOM)));
  };
  Parcoords.prototype.draw = function () {
    var self = this, box = this.box;
    box.textContent = "";
    this.width = Math.max(320, box.clientWidth || 320);
    var root = this.svg = node("svg", {
      width: this.width, height: HEIGHT, "class": "pc", role: "group",
      "aria-label": "Parallel coordinates: one line per job; drag on an axis to filter the table"
    }, box);
    var lines = node("g", { "class": "pc-lines" }, root);
    this.paths = this.rows.map(function (r) {
      var d = "", pen = false;
      r.fr.forEach(function (f, i) {
        if (f === null) { pen = false; return; }
        d += (pen ? "L" : "M") + self.x(i).toFixed(1) + " " + self.y(f).toFixed(1);
        pen = true;
      });
      return node("path", { d: d, stroke: r.stroke, "data-job": r.id }, lines);
    });
    this.brushRects = this.axes.map(function (a, i) { return self.drawAxis(root, a, i); });
    this.apply();
  };
  Parcoords.prototype.drawAxis = function (root, a, i) {
    var self = this, x = this.x(i);
    var g = node("g", {
      "class": "pc-axis", tabindex: "0", "data-axis": i, "data-name": a.name, "data-kind": a.kind,
      "aria-label": a.label + " axis: drag, or arrows (Shift: resize), to filter; Delete clears it, Escape clears all"
    }, root);
    node("line", { x1: x, x2: x, y1: this.y(1), y2: this.y(0) }, g);
    var last = this.axes.length - 1, anchor = !last ? "middle" : i === 0 ? "start" : i === last ? "end" : "middle";
    var title = node("text", { x: x + (anchor === "start" ? -8 : anchor === "end" ? 8 : 0), y: 14, "class": "pc-label", "text-anchor": anchor }, g);
    title.textContent = a.label.length > 18 ? a.label.slice(0, 17) + "…" : a.label;
    node("title", {}, title).textContent = a.label;
    a.ticks.forEach(function (t) {
      var label = t[1].length > 14 ? t[1].slice(0, 13) + "…" : t[1];
      var tick = node("text", { x: x - 5, y: self.y(t[0]) + 4, "class": "pc-tick", "text-anchor": "end" }, g);
      tick.textContent = label;
      node("title", {}, tick).textContent = t[1];
      node("line", { x1: x - 3, x2: x, y1: self.y(t[0]), y2: self.y(t[0]) }, g);
    });
    var brush = node("rect", { x: x - 8, width: 16, y: 0, height: 0, "class": "pc-brush", visibility: "hidden" }, g);
    var hit = node("rect", { x: x - HIT / 2, width: HIT, y: TOP - 14, height: HEIGHT - TOP - BOTTOM + 28, "class": "pc-hit" }, g);
    hit.addEventListener("mousedown", function (e) { self.drag(e, i); });
    return brush;
  };
  // Drag on an axis: the brush follows the mouse; a click without a drag clears that axis.
  Parcoords.prototype.drag = function (e, i) {
    e.preventDefault();
    var self = this, top = this.svg.getBoundingClientRect().top, start = this.frac(e.clientY - top), moved = false;
    function move(ev) {
      var now = self.frac(ev.clientY - top);
      if (Math.abs(now - start) < 0.01 && !moved) return;
      moved = true;
      self.brushes[i] = [Math.min(start, now), Math.max(start, now)];
      self.apply();
    }
    function up(ev) {
      window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up);
      move(ev);
      if (!moved) { delete self.brushes[i]; self.apply(); }
    }
    window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
  };
  // One job's line drawn bold and in front (null: none), as when its table row is hovered.
  Parcoords.prototype.highlight = function (id) {
    if (this.hot) this.hot.classList.remove("hot");
    this.hot = null;
    var k = this.rows.map(function (r) { return r.id; }).indexOf(id);
    if (k < 0) return;
    this.hot = this.paths[k];
    this.hot.classList.add("hot");
    this.hot.parentNode.appendChild(this.hot);
  };
  // The keyboard's brush: arrows move it by a tenth of the axis (a fifth-tall one starts at
  // the top), Shift+Down makes it taller, Shift+Up shorter.
  Parcoords.prototype.nudge = function (i, dir, resize) {
    var b = this.brushes[i] || [0.8, 1], step = 0.1;
    if (!this.brushes[i]) { this.brush(i, b[0], b[1]); return; }
    if (resize) b = [Math.max(0, Math.min(b[1] - step, b[0] + dir * step)), b[1]];
    else {
      var d = Math.max(-b[0], Math.min(1 - b[1], dir * step));
      b = [b[0] + d, b[1] + d];
    }
    this.brush(i, b[0], b[1]);
  };
  Parcoords.prototype.brush = function (i, lo, hi) { this.brushes[i] = [Math.min(lo, hi), Math.max(lo, hi)]; this.apply(); };
  Parcoords.prototype.clear = function () { this.brushes = {}; this.apply(); };
  Parcoords.prototype.inside = function () {
    var keys = Object.keys(this.brushes), brushes = this.brushes;
    if (!keys.length) return null;
    return this.rows.filter(function (r) {
      return keys.every(function (k) { var f = r.fr[k], b = brushes[k]; return f !== null && f >= b[0] - 1e-9 && f <= b[1] + 1e-9; });
    }).map(function (r) { return r.id; });
  };
  // Draw the brushes, grey the lines outside them, tell the page which jobs are inside.
  Parcoords.prototype.apply = function () {
    var self = this, ids = this.inside(), keep = ids && {};
    (ids || []).forEach(function (id) { keep[id] = true; });
    this.paths.forEach(function (p, k) { p.classList.toggle("out", !!keep && !keep[self.rows[k].id]); });
    (this.brushRects || []).forEach(function (rect, i) {
      var b = self.brushes[i];
      rect.setAttribute("visibility", b ? "visible" : "hidden");
      if (b) { rect.setAttribute("y", self.y(b[1])); rect.setAttribute("height", Math.max(2, self.y(b[0]) - self.y(b[1]))); }
    });
    if (this.svg) this.svg.setAttribute("data-brushes", Object.keys(this.brushes).length);
    if (this.options.onFilter) this.options.onFilter(ids, Object.keys(this.brushes).length);
  };

  window.labyardParcoords = { Parcoords: Parcoords, scale: scale };
})();
