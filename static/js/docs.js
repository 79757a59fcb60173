// The /docs page: Swagger UI from static/vendor (no CDN, no inline script).
(function () {
  "use strict";
  function start() {
    var root = document.getElementById("swagger-ui");
    if (!root || typeof window.SwaggerUIBundle !== "function") return;
    var meta = document.querySelector('meta[name="csrf-token"]');
    window.SwaggerUIBundle({
      url: root.getAttribute("data-openapi-url") || "/api/v1/openapi.json",
      domNode: root,
      deepLinking: true,
      presets: [window.SwaggerUIBundle.presets.apis],
      // "Try it out" from a logged-in browser sends the session cookie, so it needs the
      // CSRF token like any other state-changing request.
      requestInterceptor: function (request) {
        if (meta) request.headers["X-CSRF-Token"] = meta.getAttribute("content");
        return request;
      },
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
