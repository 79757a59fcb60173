// Small shared page parts drawn by scripts: icons (an inline SVG using the page's sprite,
// templates/_icons.html; decorative unless given a label) and progress bars
// (templates/_progress.html: a <progress role="progressbar"> whose ARIA value follows it).
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  window.labyardIcon = function (name, label) {
    var svg = document.createElementNS(NS, "svg"), use = document.createElementNS(NS, "use");
    svg.setAttribute("class", "icon");
    svg.setAttribute("width", "16");
    svg.setAttribute("height", "16");
    svg.setAttribute("focusable", "false");
    if (label) { svg.setAttribute("role", "img"); svg.setAttribute("aria-label", label); }
    else svg.setAttribute("aria-hidden", "true");
    use.setAttribute("href", "#i-" + name);
    svg.appendChild(use);
    return svg;
  };
  // Set a progress bar to a fraction 0..1, or to "unknown" (indeterminate) with null.
  window.labyardProgress = function (bar, fraction) {
    if (fraction === null || fraction === undefined || !isFinite(fraction)) {
      bar.removeAttribute("value");
      bar.removeAttribute("aria-valuenow");
      return;
    }
    var pct = Math.round(Math.min(1, Math.max(0, fraction)) * 1000) / 10;
    bar.value = pct;
    bar.setAttribute("aria-valuenow", String(pct));
  };
  // The sentence to show for a refused API request: the server's `detail` when it is one,
  // the first validation problem as "Field: what is wrong", never a bare status code.
  window.labyardProblem = function (body, status) {
    var detail = body && body.detail;
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail) && detail.length && detail[0].msg) {
      var loc = (detail[0].loc || []).slice(1).join(" ").replace(/_/g, " ");
      var msg = String(detail[0].msg).replace(/^(Value error, |String |Input )/, "");
      return loc ? loc.charAt(0).toUpperCase() + loc.slice(1) + ": " + msg : msg;
    }
    if (status === 413) return "That is larger than this server accepts.";
    if (status === 401) return "Your session has ended; log in again.";
    if (status === 403 || status === 404) return "You cannot do this here (it may have been removed).";
    if (!status) return "The server cannot be reached; check your connection and try again.";
    return status >= 500 ? "The server failed; please try again." : "The server refused this request.";
  };
})();
