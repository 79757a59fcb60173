// Small behaviours shared by every page (no inline scripts: the CSP forbids them).
(function () {
  "use strict";
  // Dismiss buttons on flash messages.
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.hasAttribute("data-dismiss")) {
      var box = target.closest(".flash");
      if (box) box.remove();
    }
  });
  // Forms marked data-reset-on-success are cleared after a successful htmx request,
  // and any earlier error message is cleared too.
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (event.detail.successful) {
      var flash = document.getElementById("flash");
      if (flash) flash.innerHTML = "";
      if (elt instanceof HTMLFormElement && elt.hasAttribute("data-reset-on-success")) elt.reset();
    }
  });
})();
