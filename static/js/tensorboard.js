// The TensorBoard waiting page: size the frame to the window once TensorBoard answers.
(function () {
  "use strict";
  function fit() {
    var frame = document.getElementById("tb-frame");
    if (!frame) return;
    var top = frame.getBoundingClientRect().top + window.scrollY;
    frame.style.width = "100%";
    frame.style.border = "1px solid #e2e5eb";
    frame.style.borderRadius = "8px";
    frame.style.background = "#fff";
    frame.style.height = Math.max(480, window.innerHeight - top - 24) + "px";
  }
  document.addEventListener("DOMContentLoaded", fit);
  document.addEventListener("htmx:afterSettle", fit);
  window.addEventListener("resize", fit);
})();
