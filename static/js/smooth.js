// Chart smoothing shared by the job page and the sweep page: TensorBoard's debiased EMA.
(function () {
  "use strict";
  window.labyardSmooth = function (ys, weight) {
    if (!weight) return ys;
    var out = new Array(ys.length), last = 0, count = 0;
    for (var i = 0; i < ys.length; i++) {
      if (ys[i] === null || !isFinite(ys[i])) { out[i] = ys[i]; continue; }
      last = last * weight + (1 - weight) * ys[i]; count++;
      out[i] = last / (1 - Math.pow(weight, count));
    }
    return out;
  };
})();
