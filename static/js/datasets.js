// The dataset page's drop zone: files and whole folders (relative paths kept), uploaded with
// the tus 1.0.0 protocol to /api/v1/datasets/<id>/uploads in 8 MiB chunks. Each upload's URL
// is kept in localStorage under the file's name, size and mtime, so an interrupted upload
// (lost connection, page reload) resumes from the offset the server confirms (HEAD).
// The files of a drop come from drop.js. An archive extracted after its upload shows the
// extraction's progress and result in its row, read from the tasks panel each time htmx
// swaps it in (the panel polls while a task runs, and then reloads the browser and insight).
(function () {
  "use strict";
  // A thumbnail smaller than its box (32x32 digits) is scaled up with sharp pixels.
  function sharpenThumbs() {
    document.querySelectorAll("#file-table img.thumb").forEach(function (img) {
      var mark = function () {
        if (img.naturalWidth && img.naturalWidth < img.clientWidth) img.classList.add("pixelated");
      };
      if (img.complete) mark(); else img.addEventListener("load", mark, { once: true });
    });
  }
  sharpenThumbs();
  document.addEventListener("htmx:afterSettle", sharpenThumbs);
})();

(function () {
  "use strict";
  var CHUNK = 8 * 1024 * 1024;
  // A few files at once: one large file already fills the link, but many small files
  // (a dropped folder) finish much sooner when their round trips overlap.
  var PARALLEL = 3;
  var zone = document.getElementById("dropzone");
  if (!zone) return;
  var datasetId = zone.getAttribute("data-dataset-id");
  var base = "/api/v1/datasets/" + datasetId + "/uploads";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var list = document.getElementById("upload-list");
  var batchBox = document.getElementById("upload-batch");
  var batchBar = document.getElementById("batch-progress");
  var batchLabel = document.getElementById("batch-label");
  var extractBox = document.getElementById("extract-after");
  var batch = { total: 0, done: 0, files: 0, finished: 0, failed: 0 };
  var queue = [];
  var running = 0;
  var watched = {};  // task id -> the upload row's item, until the extraction ends

  function b64(text) {
    return btoa(unescape(encodeURIComponent(text)));
  }

  function currentFolder() {
    var browser = document.getElementById("browser");
    return browser ? browser.getAttribute("data-path") || "" : zone.getAttribute("data-folder") || "";
  }

  function storageKey(item) {
    return "labyard-tus:" + datasetId + ":" + item.folder + ":" + item.path + ":" +
      item.file.size + ":" + item.file.lastModified;
  }

  function request(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", "1.0.0");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress) xhr.upload.onprogress = function (e) { onProgress(e.loaded); };
      xhr.onload = function () { resolve(xhr); };
      xhr.onerror = function () { reject(new Error("network error")); };
      xhr.send(body || null);
    });
  }

  function errorText(xhr) {
    var body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON: said by status */ }
    return window.labyardProblem(body, xhr.status);
  }

  function addRow(item) {
    var row = document.createElement("tr");
    row.className = "upload-row";
    var name = document.createElement("td");
    name.textContent = item.path;  // shown as text, never as HTML
    var barCell = document.createElement("td");
    var bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.className = "file-progress";
    barCell.appendChild(bar);
    var state = document.createElement("td");
    state.className = "muted";
    state.textContent = "waiting";
    row.appendChild(name);
    row.appendChild(barCell);
    row.appendChild(state);
    list.appendChild(row);
    item.bar = bar;
    item.state = state;
    item.row = row;
  }

  function showBatch() {
    batchBox.hidden = false;
    batchBar.value = batch.total ? batch.done / batch.total : 0;
    batchLabel.textContent = "Uploaded " + batch.finished + " of " + batch.files + " files" +
      (batch.failed ? " (" + batch.failed + " failed)" : "");
  }

  function setProgress(item, sent) {
    var delta = sent - item.sent;
    item.sent = sent;
    batch.done += delta;
    item.bar.value = item.file.size ? sent / item.file.size : 1;
    showBatch();
  }

  function refreshBrowser() {
    if (!window.htmx) return;
    var path = currentFolder();
    htmx.ajax("GET", "/datasets/" + datasetId + "/browser?path=" + encodeURIComponent(path),
      { source: "#browser", target: "#browser", swap: "outerHTML" });
  }

  function refreshTasks() {
    if (!window.htmx) return;
    // From the panel itself: htmx drops a request while its source has one in flight.
    htmx.ajax("GET", "/datasets/" + datasetId + "/tasks",
      { source: "#tasks", target: "#tasks", swap: "outerHTML" });
  }

  async function create(item) {
    var meta = "filename " + b64(item.file.name) + ",relativePath " + b64(item.path) +
      ",folder " + b64(item.folder) + (item.extract ? ",extract " + b64("1") : "");
    var xhr = await request("POST", base, {
      "Upload-Length": String(item.file.size), "Upload-Metadata": meta }, null, null);
    if (xhr.status !== 201) throw new Error(errorText(xhr));
    return xhr;
  }

  async function offsetOf(url) {
    var xhr = await request("HEAD", url, {}, null, null);
    return xhr.status === 200 ? parseInt(xhr.getResponseHeader("Upload-Offset"), 10) : -1;
  }

  async function upload(item) {
    var key = storageKey(item);
    var url = localStorage.getItem(key);
    var offset = url ? await offsetOf(url) : -1;
    var last = null;
    if (offset < 0) {
      last = await create(item);
      url = last.getResponseHeader("Location");
      offset = 0;
      localStorage.setItem(key, url);
    }
    setProgress(item, offset);
    item.state.textContent = offset ? "resuming" : "uploading";
    while (offset < item.file.size) {
      var chunk = item.file.slice(offset, Math.min(offset + CHUNK, item.file.size));
      var start = offset;
      last = await request("PATCH", url, {
        "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
        chunk, function (loaded) { setProgress(item, start + loaded); });
      if (last.status === 404) { localStorage.removeItem(key); throw new Error("the upload expired"); }
      if (last.status !== 204) {
        if (last.status === 409) { offset = await offsetOf(url); continue; }
        throw new Error(errorText(last));
      }
      offset = parseInt(last.getResponseHeader("Upload-Offset"), 10);
      setProgress(item, offset);
    }
    localStorage.removeItem(key);
    return last;
  }

  async function run(item) {
    try {
      var last = await upload(item);
      var task = last ? last.getResponseHeader("Labyard-Task") : null;
      item.state.textContent = task ? "uploaded, extracting" : "done";
      item.row.classList.add("done");
      batch.finished += 1;
      refreshBrowser();
      if (task) { watched[task] = item; refreshTasks(); setTimeout(syncTasks, 1000); }
    } catch (err) {
      item.state.textContent = "failed: " + err.message;
      item.row.classList.add("failed");
      batch.failed += 1;
    }
    showBatch();
    if (batch.finished + batch.failed === batch.files && window.htmx) {
      htmx.trigger(document.body, "dataset-changed");  // the insight may have changed
    }
  }

  function pump() {
    while (running < PARALLEL && queue.length) {
      var item = queue.shift();
      running += 1;
      run(item).then(function () { running -= 1; pump(); });
    }
  }

  function enqueue(file, path) {
    var item = { file: file, path: path || file.name, folder: currentFolder(), sent: 0,
      extract: extractBox ? extractBox.checked : false };
    batch.total += file.size;
    batch.files += 1;
    addRow(item);
    queue.push(item);
  }

  function extractionBar(item) {
    if (item.extractBar) return item.extractBar;
    var wrap = document.createElement("div");
    wrap.className = "ds-bar";
    wrap.setAttribute("role", "progressbar");
    wrap.setAttribute("aria-label", "Extracting " + item.path);
    wrap.setAttribute("aria-valuemin", "0");
    wrap.setAttribute("aria-valuemax", "100");
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.setAttribute("aria-hidden", "true");
    wrap.appendChild(bar);
    item.state.parentNode.insertBefore(wrap, item.state);
    item.extractBar = wrap;
    return wrap;
  }

  // Show a task's state in its upload row: progress while it runs, then its result.
  function showTask(item, status, percent, entries, message) {
    if (status === "queued" || status === "running" || status === "moving") {
      var wrap = extractionBar(item);
      wrap.setAttribute("aria-valuenow", String(percent));
      wrap.firstChild.value = percent;
      item.state.textContent = "extracting " + percent + "%";
      return false;
    }
    if (item.extractBar) item.extractBar.remove();
    item.extractBar = null;
    if (status === "done") {
      item.state.textContent = "extracted " + Number(entries).toLocaleString("en-US") + " entries";
    } else {
      item.state.textContent = "extraction " + status + ": " + message;  // failed, cancelled
      item.row.classList.remove("done");
      item.row.classList.add("failed");
    }
    return true;
  }

  // After each swap of the tasks panel: update the rows of the archives being extracted.
  function syncTasks() {
    var panel = document.getElementById("tasks");
    Object.keys(watched).forEach(function (id) {
      var row = panel && panel.querySelector('tr[data-task-id="' + id + '"]');
      if (row) {
        var finished = showTask(watched[id], row.getAttribute("data-task-status"),
          parseInt(row.getAttribute("data-task-progress"), 10) || 0,
          row.getAttribute("data-task-entries"), row.getAttribute("data-task-message"));
        if (finished) delete watched[id];
        return;
      }
      var item = watched[id];
      if ((panel && panel.hasAttribute("hx-get")) || item.asking) return;  // polling: later
      item.asking = true;  // not in the panel, which has stopped polling: ask the API
      fetch("/api/v1/dataset-tasks/" + id, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (t) {
          item.asking = false;
          var finished = !t || showTask(item, t.status, Math.round(t.progress * 100),
            t.total_entries, t.message);
          if (finished) delete watched[id];
          else setTimeout(syncTasks, 1000);  // ask again unless the panel shows it by then
          refreshTasks();  // the panel polls while a task runs, then reloads the others
        });
    });
  }
  document.addEventListener("htmx:load", syncTasks);  // new content, the tasks panel among it


  function take(files) {
    files.forEach(function (f) { enqueue(f.file, f.path); });
    showBatch();
    pump();
  }

  window.LabyardDrop.attach(zone, take);

  function pick(input) {
    if (!input) return;
    input.addEventListener("change", function () {
      var files = window.LabyardDrop.filesOfInput(input);
      input.value = "";
      if (files.length) take(files);
    });
  }
  pick(document.getElementById("file-picker"));
  pick(document.getElementById("folder-picker"));
})();
