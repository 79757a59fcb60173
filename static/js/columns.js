// Choose which param and metric columns a jobs or sweep table shows. A table opts in with
// data-columns="<scope>" (e.g. "lab-3"); the hidden columns are remembered in localStorage
// per user (the top bar's data-user) and scope. A "Columns" menu is added above the table.
(function () {
  "use strict";

  function storageKey(table) {
    var top = document.querySelector(".topbar");
    return "labyard.columns." + ((top && top.getAttribute("data-user")) || "") + "." + table.getAttribute("data-columns");
  }
  function hiddenNames(table) {
    try { return JSON.parse(localStorage.getItem(storageKey(table)) || "[]"); } catch (e) { return []; }
  }
  // "param:lr" or "metric:Train_loss" for a choosable header cell, else null
  function columnName(th) {
    var kind = th.classList.contains("param") ? "param" : th.classList.contains("metric") ? "metric" : null;
    return kind && th.firstChild ? kind + ":" + th.firstChild.textContent.trim() : null;
  }
  function apply(table) {
    var hidden = hiddenNames(table), heads = table.tHead ? table.tHead.rows[0].cells : [], off = {};
    for (var i = 0; i < heads.length; i++) {
      var name = columnName(heads[i]);
      off[i] = !!name && hidden.indexOf(name) >= 0;
    }
    Array.prototype.forEach.call(table.rows, function (tr) {
      if (tr.cells.length !== heads.length) return;  // a "no jobs" row spanning the table
      Array.prototype.forEach.call(tr.cells, function (cell, j) { cell.hidden = off[j]; });
    });
  }
  function menu(table) {
    var names = [], heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th) {
      var name = columnName(th);
      if (name && names.indexOf(name) < 0) names.push(name);
    });
    if (!names.length) return;
    var box = document.createElement("details");
    box.className = "columns-picker";
    box.innerHTML = '<summary class="btn small ghost">Columns</summary><div class="columns-menu" role="group" aria-label="Columns shown"></div>';
    var list = box.lastChild, hidden = hiddenNames(table);
    names.forEach(function (name) {
      var label = document.createElement("label"), box2 = document.createElement("input");
      label.className = "check";
      box2.type = "checkbox"; box2.value = name; box2.checked = hidden.indexOf(name) < 0;
      label.appendChild(box2);
      label.appendChild(document.createTextNode(" " + name.replace(":", ": ")));
      list.appendChild(label);
    });
    list.addEventListener("change", function () {
      var off = [];
      list.querySelectorAll("input").forEach(function (b) { if (!b.checked) off.push(b.value); });
      localStorage.setItem(storageKey(table), JSON.stringify(off));
      apply(table);
    });
    var anchor = table.closest(".table-scroll") || table;
    anchor.parentNode.insertBefore(box, anchor);
  }
  function init() {
    document.querySelectorAll("table[data-columns]").forEach(function (table) {
      if (!table.hasAttribute("data-columns-ready")) {
        table.setAttribute("data-columns-ready", "");
        menu(table);
      }
      apply(table);
    });
  }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);  // the jobs table is re-rendered live
})();
