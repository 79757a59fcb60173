// Injected first into every proxied TensorBoard page (see labyard/tensorboard/proxy.py).
// The page runs sandboxed without same-origin, so its origin is opaque: cookies and storage
// throw SecurityError and workers cannot start from its URL, which would stop TensorBoard's
// app. It gets an empty cookie string, in-memory storage for the page's life (its settings
// are not kept on reload) and workers started from a blob. Nothing here widens what the
// page may reach.
(function () {
  try { void document.cookie; } catch (e) {
    Object.defineProperty(document, "cookie", {
      get: function () { return ""; }, set: function () {}, configurable: true
    });
  }
  function memory() {
    var d = new Map();
    return {
      getItem: function (k) { return d.has(String(k)) ? d.get(String(k)) : null; },
      setItem: function (k, v) { d.set(String(k), String(v)); },
      removeItem: function (k) { d.delete(String(k)); },
      clear: function () { d.clear(); },
      key: function (i) { return Array.from(d.keys())[i] || null; },
      get length() { return d.size; }
    };
  }
  var NativeWorker = window.Worker;
  if (NativeWorker && String(self.origin) === "null") {
    // a worker's script must share the page's origin, and an opaque one shares none: start
    // it from a blob (which does) that loads the script
    window.Worker = function (url, options) {
      var src = JSON.stringify(new URL(url, document.baseURI).href);
      var module = options && options.type === "module";
      var code = module ? "import " + src : "importScripts(" + src + ")";
      var blob = new Blob([code + ";"], { type: "text/javascript" });
      return new NativeWorker(URL.createObjectURL(blob), options);
    };
    window.Worker.prototype = NativeWorker.prototype;
  }
  ["localStorage", "sessionStorage"].forEach(function (name) {
    try { return void window[name].length; } catch (e) { /* sandboxed: no storage */ }
    Object.defineProperty(window, name, { value: memory(), configurable: true });
  });
})();
