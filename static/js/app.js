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

  // Where the message of a failed request goes: next to the control that sent it.
  // A field error lands after the form's input of that name; otherwise in the form's
  // `.form-error` (made if missing), or after the button that sent it. An element may
  // name its own slot with data-error-slot="#id".
  function errorSlot(elt, field) {
    var named = elt.closest("[data-error-slot]");
    if (named) return document.querySelector(named.getAttribute("data-error-slot"));
    var form = elt instanceof HTMLFormElement ? elt : elt.closest("form");
    var owner = form || elt;
    if (field && form) {
      var input = form.querySelector('[name="' + CSS.escape(field) + '"]');
      if (input) return slotAfter(input.closest("label") || input, "field-error");
    }
    var existing = owner.querySelector(".form-error[data-request-error]");
    if (existing) return existing;
    if (form) {
      var made = makeSlot("form-error");
      form.appendChild(made);
      return made;
    }
    return slotAfter(elt, "form-error inline-error");
  }

  function makeSlot(className) {
    var slot = document.createElement("p");
    slot.className = className;
    slot.setAttribute("role", "alert");
    slot.setAttribute("data-request-error", "");
    return slot;
  }

  function slotAfter(node, className) {
    var next = node.nextElementSibling;
    if (next && next.hasAttribute("data-request-error")) return next;
    var slot = makeSlot(className);
    node.insertAdjacentElement("afterend", slot);
    return slot;
  }

  function clearErrors(elt) {
    var owner = (elt.closest && elt.closest("form")) || elt.parentElement;
    if (!owner) return;
    owner.querySelectorAll("[data-request-error]").forEach(function (n) { n.remove(); });
  }

  // The server answers a failed htmx request with the error fragment (templates/error.html):
  // read its message (DOMParser runs no script) and show it as text next to the control.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status < 400) return;
    var elt = event.detail.requestConfig ? event.detail.requestConfig.elt : event.detail.elt;
    if (!(elt instanceof Element)) return;
    var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    var box = doc.querySelector(".flash.error");
    var text = box && box.querySelector(".message") ? box.querySelector(".message").textContent : "";
    if (!text) text = xhr.status >= 500 ? "The server failed; please try again." : "That did not work.";
    clearErrors(elt);
    var slot = errorSlot(elt, box ? box.getAttribute("data-field") : null);
    if (!slot) return;  // no place to show it: keep htmx's own swap into #flash
    slot.textContent = text;
    event.detail.shouldSwap = false;
  });

  // Forms marked data-reset-on-success are cleared after a successful htmx request,
  // and any earlier error message is cleared too.
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    var xhr = event.detail.xhr;
    // 4xx answers are swapped without htmx's console error, so "successful" is not enough
    if (event.detail.successful && !(xhr && xhr.status >= 400)) {
      var flash = document.getElementById("flash");
      if (flash) flash.innerHTML = "";
      // a lookup (GET, e.g. suggestions while typing) does not undo an action's error
      var verb = event.detail.requestConfig ? event.detail.requestConfig.verb : "get";
      if (elt instanceof Element && verb !== "get") clearErrors(elt);
      if (elt instanceof HTMLFormElement && elt.hasAttribute("data-reset-on-success")) elt.reset();
    }
  });
  // A network failure (server down) is said next to the control as well.
  document.addEventListener("htmx:sendError", function (event) {
    var elt = event.detail.elt;
    if (!(elt instanceof Element)) return;
    clearErrors(elt);
    var slot = errorSlot(elt, null);
    if (slot) slot.textContent = "The server cannot be reached; check your connection and try again.";
  });
})();
