// The JupyterLab page: size the sandboxed frame to the window.
(function () {
  "use strict";
  function fit() {
    var frame = document.getElementById("session-frame");
    if (!frame) return;
    var top = frame.getBoundingClientRect().top + window.scrollY;
    frame.style.height = Math.max(480, window.innerHeight - top - 24) + "px";
  }
  document.addEventListener("DOMContentLoaded", fit);
  window.addEventListener("resize", fit);
})();
