// Labs pages: the template toggle, CodeMirror editors, uploads, rename, config error lines.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function showError(html) {
    var flash = document.getElementById("flash");
    if (flash) flash.innerHTML = html;
  }

  // "Create New": the Template toggle shows or hides the template choice.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement)) return;
    if (target.hasAttribute("data-template-toggle")) {
      var form = target.closest("form");
      var choice = form && form.querySelector("[data-template-choice]");
      if (choice) choice.hidden = !target.checked;
    }
    if (target.hasAttribute("data-upload-files")) upload(target);
  });

  // Parameters: a changed field makes an open confirmation stale.
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target instanceof Element && target.hasAttribute("data-param")) {
      var review = document.getElementById("review");
      if (review) review.innerHTML = "";
    }
  });
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-param")) {
      var review = document.getElementById("review");
      if (review) review.innerHTML = "";
    }
  });

  // Code editors: CodeMirror on every textarea[data-code-editor], kept in sync with it.
  var editors = [];
  function modeFor(name) {
    var lower = (name || "").toLowerCase();
    if (/\.py$/.test(lower)) return "python";
    if (/\.ya?ml$/.test(lower)) return "yaml";
    if (/\.(sh|bash)$/.test(lower)) return "shell";
    return null;
  }
  function setUpEditors() {
    if (typeof window.CodeMirror === "undefined") return;
    document.querySelectorAll("textarea[data-code-editor]").forEach(function (area) {
      if (area.dataset.ready) return;
      area.dataset.ready = "1";
      var editor = window.CodeMirror.fromTextArea(area, {
        mode: modeFor(area.getAttribute("data-filename")),
        lineNumbers: true,
        indentUnit: 4,
        readOnly: area.hasAttribute("readonly"),
        viewportMargin: 50,
      });
      editor.on("change", function () { editor.save(); });
      editors.push(editor);
    });
  }
  document.addEventListener("DOMContentLoaded", setUpEditors);

  // Config tab: mark the line an error names.
  var marked = null;
  document.addEventListener("htmx:afterSwap", function () {
    var result = document.getElementById("config-result");
    var editor = editors[0];
    if (!result || !editor) return;
    if (marked !== null) editor.removeLineClass(marked, "background", "cm-error-line");
    marked = null;
    var line = parseInt(result.getAttribute("data-error-line") || "", 10);
    if (line > 0) {
      marked = line - 1;
      editor.addLineClass(marked, "background", "cm-error-line");
      editor.scrollIntoView({ line: marked, ch: 0 });
    }
  });

  // Files tab: upload files or a whole folder through the JSON API, then reload.
  function upload(input) {
    var box = input.closest("[data-upload]");
    if (!box || !input.files || !input.files.length) return;
    var lab = box.getAttribute("data-lab");
    var folder = box.getAttribute("data-folder") || "";
    var status = box.querySelector("[data-upload-status]");
    var files = Array.prototype.slice.call(input.files);
    var done = 0;
    function next() {
      if (!files.length) { window.location.reload(); return; }
      var file = files.shift();
      var rel = file.webkitRelativePath || file.name;
      var data = new FormData();
      data.append("file", file);
      data.append("path", folder ? folder + "/" + rel : rel);
      if (status) status.textContent = "Uploading " + rel + " (" + (done + 1) + ")";
      fetch("/api/v1/labs/" + lab + "/files", {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken() },
      }).then(function (response) {
        if (!response.ok) {
          return response.json().then(function (body) {
            if (status) status.textContent = rel + ": " + (body.detail || response.statusText);
          });
        }
        done += 1;
        next();
      });
    }
    next();
  }

  // Files tab: rename or move with a prompt.
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-rename]") : null;
    if (!button) return;
    var path = button.getAttribute("data-rename");
    var newPath = window.prompt("New name or path for " + path, path);
    if (!newPath || newPath === path) return;
    var body = new URLSearchParams();
    body.append("path", path);
    body.append("new_path", newPath);
    body.append("folder", button.getAttribute("data-folder") || "");
    fetch("/labs/" + button.getAttribute("data-lab") + "/files/rename", {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "HX-Request": "true" },
    }).then(function (response) {
      var target = response.headers.get("HX-Redirect");
      if (response.ok && target) { window.location.assign(target); return; }
      return response.text().then(showError);
    });
  });
})();
