// Labs pages: the template toggle, CodeMirror editors, uploads, file dialogs, grid chips,
// config error lines.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
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
    if (target.hasAttribute("data-upload-files") && window.LabyardDrop) {
      upload(target.closest("[data-upload]"), window.LabyardDrop.filesOfInput(target));
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

  // Files tab: upload picked or dropped files (drop.js's [{file, path}]), then reload.
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-upload]").forEach(function (box) {
      if (window.LabyardDrop) window.LabyardDrop.attach(box, function (items) { upload(box, items); });
    });
  });
  function upload(box, items) {
    if (!box || !items.length) return;
    var lab = box.getAttribute("data-lab");
    var folder = box.getAttribute("data-folder") || "";
    var status = box.querySelector("[data-upload-status]");
    var files = items.slice();
    var done = 0;
    function next() {
      if (!files.length) { window.location.reload(); return; }
      var item = files.shift();
      var file = item.file;
      var rel = item.path;
      var data = new FormData();
      data.append("file", file);
      data.append("path", folder ? folder + "/" + rel : rel);
      if (status) status.textContent = "Uploading " + rel + " (" + (done + 1) + ")";
      fetch("/api/v1/labs/" + lab + "/files", {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken() },
      }).then(function (response) {
        if (!response.ok) {
          return response.json().catch(function () { return null; }).then(function (body) {
            if (status) status.textContent = rel + ": " + window.labyardProblem(body, response.status);
          });
        }
        done += 1;
        next();
      }, function () {
        if (status) status.textContent = rel + ": " + window.labyardProblem(null, 0);
      });
    }
    next();
  }

  // Files tab: Rename, Move and New folder in a <dialog> (OK / Cancel / Escape; focus goes
  // back to the button that opened it); the JSON API's error shows next to the field.
  var ACTIONS = {
    rename: { title: "Rename", label: "New name", hint: "The new name in the same folder." },
    move: { title: "Move", label: "Destination folder", hint: "A folder of the lab; empty is the lab's top." },
    "new-folder": { title: "New folder", label: "Folder name", hint: "Created in the folder shown." },
  };
  function parentOf(path) { var i = path.lastIndexOf("/"); return i < 0 ? "" : path.slice(0, i); }
  function baseOf(path) { return path.slice(path.lastIndexOf("/") + 1); }
  function joinPath(folder, name) { return folder ? folder.replace(/\/+$/, "") + "/" + name : name; }
  var opener = null;
  function dialogError(dialog, message) {
    var error = dialog.querySelector("#file-dialog-error");
    var input = dialog.querySelector("#file-dialog-value");
    error.textContent = message || "";
    error.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  }
  function openFileDialog(button) {
    var dialog = document.getElementById("file-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return;
    var action = button.getAttribute("data-file-action");
    var path = button.getAttribute("data-path") || "";
    var text = ACTIONS[action];
    var input = dialog.querySelector("#file-dialog-value");
    dialog.querySelector("#file-dialog-title").textContent = text.title + (path ? " " + path : "");
    dialog.querySelector("[data-file-dialog-label]").textContent = text.label;
    dialog.querySelector("[data-file-dialog-hint]").textContent = text.hint;
    dialog.setAttribute("data-action", action);
    dialog.setAttribute("data-path", path);
    input.value = action === "rename" ? baseOf(path) : action === "move" ? parentOf(path) : "";
    dialogError(dialog, "");
    opener = button;
    dialog.showModal();
    input.focus();
    input.select();
  }
  function fileRequest(dialog, value) {
    var action = dialog.getAttribute("data-action");
    var path = dialog.getAttribute("data-path") || "";
    var folder = dialog.getAttribute("data-folder") || "";
    var url = "/api/v1/labs/" + dialog.getAttribute("data-lab");
    if (action === "new-folder") return { url: url + "/folders", body: { path: joinPath(folder, value) } };
    var target = action === "rename" ? joinPath(parentOf(path), value) : joinPath(value.replace(/^\/+/, ""), baseOf(path));
    return { url: url + "/files/move", body: { path: path, new_path: target } };
  }
  function submitFileDialog(dialog) {
    var value = dialog.querySelector("#file-dialog-value").value.trim();
    if (!value && dialog.getAttribute("data-action") !== "move") {
      dialogError(dialog, "Type a name.");
      return;
    }
    var request = fileRequest(dialog, value);
    fetch(request.url, {
      method: "POST", body: JSON.stringify(request.body), credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    }).then(function (response) {
      if (response.ok) {
        var folder = dialog.getAttribute("data-folder") || "";
        window.location.assign(window.location.pathname + "?path=" + encodeURIComponent(folder));
        return null;
      }
      return response.json().catch(function () { return null; }).then(function (body) {
        dialogError(dialog, window.labyardProblem(body, response.status));
      });
    }, function () { dialogError(dialog, "The server could not be reached; try again."); });
  }
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var button = target && target.closest("[data-file-action]");
    if (button) { openFileDialog(button); return; }
    var cancel = target && target.closest("[data-dialog-cancel]");
    if (cancel) cancel.closest("dialog").close();
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-file-dialog-form")) return;
    event.preventDefault();
    submitFileDialog(form.closest("dialog"));
  });
  document.addEventListener("close", function (event) {
    if (event.target instanceof HTMLDialogElement && event.target.id === "file-dialog" && opener) {
      opener.focus();
      opener = null;
    }
  }, true);

  // Parameters: grid values are chips. An option chip toggles (aria-pressed); a typed value
  // becomes a chip on Enter or comma (or when the field is left), each with a remove button.
  // Every chosen value is a hidden input `param.<name>`; none at all sends one empty value,
  // so the server says "give at least one value" instead of quietly keeping the file's.
  function syncChips(box) {
    var name = "param." + box.getAttribute("data-chips");
    box.querySelectorAll("input[data-chip-empty]").forEach(function (el) { el.remove(); });
    if (box.querySelector("[data-chip-toggle]")) {
      box.querySelectorAll("input[type=hidden]").forEach(function (el) { el.remove(); });
      box.querySelectorAll("[data-chip-toggle][aria-pressed=true]").forEach(function (chip) {
        box.appendChild(hidden(name, chip.getAttribute("data-chip-toggle")));
      });
    }
    if (!box.querySelector("input[type=hidden]")) {
      var empty = hidden(name, "");
      empty.setAttribute("data-chip-empty", "");
      box.appendChild(empty);
    }
    var review = document.getElementById("review");
    if (review) review.innerHTML = "";
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function hidden(name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }
  function addChips(entry) {
    var box = entry.closest("[data-chips]");
    var name = "param." + box.getAttribute("data-chips");
    var have = Array.prototype.map.call(
      box.querySelectorAll("[data-chip] input[type=hidden]"), function (el) { return el.value; });
    var added = false;
    entry.value.split(",").forEach(function (part) {
      var value = part.trim();
      if (!value || have.indexOf(value) >= 0) return;
      have.push(value);
      var chip = document.createElement("span");
      chip.className = "chip";
      chip.setAttribute("data-chip", "");
      chip.appendChild(document.createTextNode(value));
      chip.appendChild(hidden(name, value));
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "chip-remove";
      remove.setAttribute("data-chip-remove", "");
      remove.setAttribute("aria-label", "Remove " + value);
      remove.textContent = "×";
      chip.appendChild(remove);
      box.insertBefore(chip, entry);
      added = true;
    });
    entry.value = "";
    if (added) syncChips(box);
  }
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var toggle = target && target.closest("[data-chip-toggle]");
    if (toggle) {
      toggle.setAttribute("aria-pressed", toggle.getAttribute("aria-pressed") === "true" ? "false" : "true");
      syncChips(toggle.closest("[data-chips]"));
      return;
    }
    var remove = target && target.closest("[data-chip-remove]");
    if (remove) {
      var box = remove.closest("[data-chips]");
      var chip = remove.closest("[data-chip]");
      var next = chip.nextElementSibling;
      chip.remove();
      syncChips(box);
      var focus = next && (next.querySelector("[data-chip-remove]") || next);
      if (focus) focus.focus();
    }
  });
  document.addEventListener("keydown", function (event) {
    var entry = event.target;
    if (!(entry instanceof HTMLInputElement) || !entry.hasAttribute("data-chip-entry")) return;
    if (event.key === "Enter" || event.key === ",") {
      event.preventDefault();
      addChips(entry);
    } else if (event.key === "Backspace" && !entry.value) {
      var chips = entry.closest("[data-chips]").querySelectorAll("[data-chip]");
      if (chips.length) { chips[chips.length - 1].remove(); syncChips(entry.closest("[data-chips]")); }
    }
  });
  document.addEventListener("focusout", function (event) {
    var entry = event.target;
    if (entry instanceof HTMLInputElement && entry.hasAttribute("data-chip-entry") && entry.value.trim()) {
      addChips(entry);
    }
  });
})();
