// The files of a drop, and a drop zone that also works from the keyboard. One module for
// every page that takes dropped files (the dataset page, the lab's Files tab).
//
// A real drop gives DataTransfer.items, whose webkitGetAsEntry() walks dropped folders, and
// DataTransfer.files (files only, no folders). Items built by a script (new DataTransfer()
// with items.add(file)) have no entry: those are read with getAsFile(). The items must be
// read while the drop event runs; the folders are read afterwards, batch by batch
// (readEntries gives at most about a hundred entries per call, and an empty batch at the end).
(function () {
  "use strict";

  function readAllEntries(reader) {
    return new Promise(function (resolve) {
      var all = [];
      var next = function () {
        reader.readEntries(function (batch) {
          if (!batch.length) { resolve(all); return; }
          all = all.concat(Array.prototype.slice.call(batch));
          next();
        }, function () { resolve(all); });
      };
      next();
    });
  }

  // Every file under an entry as {file, path}, path relative to the drop ("photos/a/b.png").
  function filesOfEntry(entry, prefix) {
    if (entry.isFile) {
      return new Promise(function (resolve) {
        entry.file(function (file) { resolve([{ file: file, path: prefix + file.name }]); },
          function () { resolve([]); });
      });
    }
    if (!entry.isDirectory) return Promise.resolve([]);
    return readAllEntries(entry.createReader()).then(function (children) {
      return Promise.all(children.map(function (child) {
        return filesOfEntry(child, prefix + entry.name + "/");
      }));
    }).then(function (lists) { return [].concat.apply([], lists); });
  }

  // The dropped files, folders walked: a promise of [{file, path}].
  function filesOfDrop(dataTransfer) {
    if (!dataTransfer) return Promise.resolve([]);
    var items = dataTransfer.items;
    var pending = [];
    var loose = [];
    if (items && items.length) {
      for (var i = 0; i < items.length; i++) {
        var item = items[i];
        if (item.kind && item.kind !== "file") continue;  // dragged text or links
        var entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
        if (entry) { pending.push(filesOfEntry(entry, "")); continue; }
        var file = item.getAsFile ? item.getAsFile() : null;
        if (file) loose.push({ file: file, path: file.name });
      }
    }
    if (!pending.length && !loose.length) {
      Array.prototype.forEach.call(dataTransfer.files || [], function (f) {
        loose.push({ file: f, path: f.name });
      });
    }
    return Promise.all(pending).then(function (lists) {
      return loose.concat.apply(loose, lists);
    });
  }

  // The files an <input type=file> holds, with the folder picker's relative paths.
  function filesOfInput(input) {
    return Array.prototype.map.call(input.files || [], function (f) {
      return { file: f, path: f.webkitRelativePath || f.name };
    });
  }

  // Make `zone` take drops and, focused, open its first file picker on Enter or Space.
  // `onFiles` gets [{file, path}] (never called with an empty list).
  function attach(zone, onFiles) {
    if (!zone || zone.hasAttribute("data-drop-ready")) return;
    zone.setAttribute("data-drop-ready", "");
    var depth = 0;
    function over(e) {
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
      zone.classList.add("over");
    }
    zone.addEventListener("dragenter", function (e) { depth += 1; over(e); });
    zone.addEventListener("dragover", over);
    zone.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (!depth) zone.classList.remove("over");
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      depth = 0;
      zone.classList.remove("over");
      filesOfDrop(e.dataTransfer).then(function (files) { if (files.length) onFiles(files); });
    });
    zone.addEventListener("keydown", function (e) {
      if (e.target !== zone || (e.key !== "Enter" && e.key !== " ")) return;
      e.preventDefault();
      var picker = zone.querySelector('input[type="file"]');
      if (picker) picker.click();
    });
  }

  window.LabyardDrop = { filesOfDrop: filesOfDrop, filesOfInput: filesOfInput, attach: attach };
})();
