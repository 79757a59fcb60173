// Chart panels shared by the job page and the sweep page (uPlot): integer ticks on step, iter
// and epoch axes, axis labels, markers on short series, a log-scale toggle, drag zoom with a
// reset, PNG and CSV downloads, and the panel's numbers as a table.
(function () {
  "use strict";
  var INCRS = [];
  for (var e = 0; e <= 12; e++) [1, 2, 5].forEach(function (m) { INCRS.push(m * Math.pow(10, e)); });
  var INTEGER_AXES = { step: true, iter: true, epoch: true };
  var MARKERS_UP_TO = 60;  // a series with at most this many points is drawn with markers

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    var a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(3) : String(Math.round(v * 1e4) / 1e4);
  }
  function count(ys) { var n = 0; ys.forEach(function (y) { if (y !== null && y !== undefined) n++; }); return n; }
  function download(name, href) {
    var a = el("a", { href: href, download: name });
    document.body.appendChild(a); a.click(); a.remove();
  }
  function fileName(text) { return text.replace(/[^A-Za-z0-9_.-]+/g, "_"); }

  // One panel: a title, a toolbar, a uPlot and a <details> table, inside `box`.
  function Panel(box, options) {
    this.o = options;  // {id, title, file, height, legend, attrs}
    this.plot = null; this.key = null; this.zoomed = false; this.spec = null;
    var wrap = this.wrap = el("div", { "class": "chart" });
    Object.keys(options.attrs || {}).forEach(function (k) { wrap.setAttribute(k, options.attrs[k]); });
    var head = el("div", { "class": "chart-head" });
    this.title = el("h3", {}, options.title);
    var tools = el("div", { "class": "chart-tools" });
    var logLabel = el("label", { "class": "check small" });
    this.log = el("input", { type: "checkbox", "class": "chart-log" });
    logLabel.appendChild(this.log); logLabel.appendChild(document.createTextNode(" Log scale"));
    this.reset = el("button", { type: "button", "class": "btn small ghost chart-reset", disabled: "" }, "Reset zoom");
    var png = el("button", { type: "button", "class": "btn small ghost chart-png" }, "PNG");
    var csv = el("button", { type: "button", "class": "btn small ghost chart-csv" }, "CSV");
    [logLabel, this.reset, png, csv].forEach(function (n) { tools.appendChild(n); });
    head.appendChild(this.title); head.appendChild(tools);
    this.area = el("div", { "class": "chart-plot" });
    var details = el("details", { "class": "chart-numbers" });
    details.appendChild(el("summary", {}, "Numbers"));
    this.table = el("table", { "class": "table compact" });
    details.appendChild(this.table);
    [head, this.area, details].forEach(function (n) { wrap.appendChild(n); });
    box.appendChild(wrap);
    var self = this;
    this.log.addEventListener("change", function () { self.set(self.spec); });
    this.reset.addEventListener("click", function () { self.resetZoom(); });
    png.addEventListener("click", function () { download(fileName(self.o.file) + ".png", self.png()); });
    csv.addEventListener("click", function () {
      download(fileName(self.o.file) + ".csv", URL.createObjectURL(new Blob([self.csv()], { type: "text/csv" })));
    });
  }
  // spec: {xName, yName, series: [{name, x, y, stroke, width, scatter}], smooth, xText(x) for the
  // CSV, extra(opts) to adjust uPlot's options, created(plot)}
  // Axis, grid and text colours from the page's CSS variables (static/css/labyard.css), so the
  // axes read in the light and the dark scheme.
  function theme() {
    var css = getComputedStyle(document.documentElement);
    var get = function (name, dflt) { return css.getPropertyValue(name).trim() || dflt; };
    return { axis: get("--chart-axis", "#5e6778"), grid: get("--chart-grid", "rgba(0,0,0,.08)"),
             bg: get("--panel", "#fff"), text: get("--text", "#000") };
  }
  function themed(axis, t) {
    axis.stroke = t.axis;
    axis.grid = { stroke: t.grid, width: 1 };
    axis.ticks = { stroke: t.grid, width: 1 };
    return axis;
  }
  Panel.prototype.set = function (spec) {
    this.spec = spec;
    var colours = theme();
    var log = this.log.checked, weight = spec.smooth || 0;
    var tables = spec.series.map(function (s) {
      var ys = window.labyardSmooth(s.y, weight);
      if (log) ys = ys.map(function (v) { return v !== null && v > 0 ? v : null; });
      return [s.x, ys];
    });
    var data = tables.length === 1 ? tables[0] : uPlot.join(tables);  // one series: x may repeat (scatter)
    var markers = spec.series.map(function (s) { return s.scatter || s.x.length <= MARKERS_UP_TO; });
    var key = [spec.xName, log, markers.join(","), spec.series.map(function (s) { return s.name + s.stroke; }).join(","), colours.axis].join("|");
    var total = spec.series.reduce(function (n, s) { return n + s.x.length; }, 0);
    this.wrap.setAttribute("data-points", total);
    this.wrap.setAttribute("data-series", spec.series.map(function (s) { return s.name; }).join(","));
    this.fillTable(spec);
    if (this.plot && this.key === key) { this.plot.setData(data, !this.zoomed); return; }
    if (this.plot) this.plot.destroy();
    this.key = key; this.zoomed = false; this.reset.disabled = true;
    var self = this;
    var opts = {
      width: this.width(), height: this.o.height || 260,
      scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : {} },
      axes: [themed(this.xAxis(spec.xName), colours), themed({ label: spec.yName, size: 60 }, colours)],
      series: [{ label: spec.xName }].concat(spec.series.map(function (s, i) {
        return {
          label: s.name, stroke: s.stroke, width: s.width || 1.5, spanGaps: true,
          paths: s.scatter ? function () { return null; } : undefined,
          points: { show: markers[i], size: 6, fill: s.stroke, stroke: s.stroke }
        };
      })),
      legend: { show: this.o.legend !== false, live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: { setScale: [function (u, scale) { if (scale === "x") self.noteZoom(u); }] }
    };
    if (spec.extra) spec.extra(opts);
    this.plot = new uPlot(opts, data, this.area);
    this.wrap.plot = this.plot;  // for tests and the console
    this.plot.over.addEventListener("dblclick", function () { self.zoomed = false; self.reset.disabled = true; });
    if (spec.created) spec.created(this.plot);
  };
  Panel.prototype.xAxis = function (name) {
    var axis = { label: name };
    if (INTEGER_AXES[name]) {
      axis.incrs = INCRS;
      axis.values = function (u, ticks) { return ticks.map(function (t) { return String(Math.round(t)); }); };
    }
    return axis;
  };
  Panel.prototype.noteZoom = function (u) {
    var xs = u.data[0];
    if (!xs.length) return;
    this.zoomed = u.scales.x.min > xs[0] || u.scales.x.max < xs[xs.length - 1];
    this.reset.disabled = !this.zoomed;
  };
  Panel.prototype.resetZoom = function () {
    this.zoomed = false; this.reset.disabled = true;
    if (this.plot) this.plot.setData(this.plot.data, true);
  };
  Panel.prototype.width = function () { return Math.max(300, this.area.clientWidth || this.wrap.clientWidth - 8); };
  Panel.prototype.resize = function () { if (this.plot) this.plot.setSize({ width: this.width(), height: this.o.height || 260 }); };
  Panel.prototype.destroy = function () { if (this.plot) this.plot.destroy(); this.wrap.remove(); };
  Panel.prototype.fillTable = function (spec) {
    var t = this.table;
    t.textContent = "";
    var head = el("tr");
    ["Series", spec.xName, "Latest", "Min", "Max", "Points"].forEach(function (h) { head.appendChild(el("th", { scope: "col" }, h)); });
    t.appendChild(el("thead")).appendChild(head);
    var body = t.appendChild(el("tbody"));
    spec.series.forEach(function (s) {
      var tr = el("tr", { "data-series": s.name }), last = s.y.length - 1, ys = s.y.filter(function (v) { return v !== null; });
      tr.appendChild(el("th", { scope: "row" }, s.name));
      [last >= 0 ? s.x[last] : null, last >= 0 ? s.y[last] : null,
       ys.length ? Math.min.apply(null, ys) : null, ys.length ? Math.max.apply(null, ys) : null
      ].forEach(function (v) { tr.appendChild(el("td", { "class": "num" }, fmt(v))); });
      tr.appendChild(el("td", { "class": "num" }, String(count(s.y))));
      body.appendChild(tr);
    });
  };
  // The raw points (never smoothed), one row per x, one column per series.
  Panel.prototype.csv = function () {
    var spec = this.spec;
    var tables = spec.series.map(function (s) { return [s.x, s.y]; });
    var data = tables.length === 1 ? tables[0] : uPlot.join(tables), xText = spec.xText || String;
    var quote = function (v) { return /[",\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; };
    var lines = [[spec.xName].concat(spec.series.map(function (s) { return s.name; })).map(quote).join(",")];
    for (var i = 0; i < data[0].length; i++) {
      var row = [];
      for (var j = 0; j < data.length; j++) row.push(data[j][i] === null || data[j][i] === undefined ? "" : j ? String(data[j][i]) : quote(xText(data[j][i])));
      lines.push(row.join(","));
    }
    return lines.join("\n") + "\n";
  };
  // The plot's canvas on the panel's colour, under the panel's title and the series' names in their colours.
  Panel.prototype.png = function () {
    var src = this.plot.ctx.canvas, ratio = src.width / this.plot.width, pad = Math.round(28 * ratio);
    var out = el("canvas");
    out.width = src.width; out.height = src.height + pad;
    var ctx = out.getContext("2d");
    var colours = theme();
    ctx.fillStyle = colours.bg; ctx.fillRect(0, 0, out.width, out.height);
    ctx.font = Math.round(14 * ratio) + "px sans-serif"; ctx.textBaseline = "middle";
    ctx.fillStyle = colours.text; ctx.fillText(this.o.title, 8 * ratio, pad / 2);
    var x = 8 * ratio + ctx.measureText(this.o.title).width + 16 * ratio;
    this.spec.series.slice(0, 20).forEach(function (s) {
      ctx.fillStyle = s.stroke; ctx.fillText(s.name, x, pad / 2); x += ctx.measureText(s.name).width + 12 * ratio;
    });
    ctx.drawImage(src, 0, pad);
    return out.toDataURL("image/png");
  };

  window.labyardCharts = { Panel: Panel, fmt: fmt, INCRS: INCRS };
})();
