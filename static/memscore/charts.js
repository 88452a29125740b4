// Small SVG line charts, no library: <div class="chart" data-series="ID"> reads
// the JSON that Django's json_script put in <script id="ID"> — a list of
// {"t": ISO time, "score": number, "weight": number} — and draws score points
// and the weight line over time, in nats on the y axis (from 0 to a round
// number above the largest value). Labels are set with textContent.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var PAD = { left: 64, right: 12, top: 12, bottom: 26 };
  // The drawing is as wide as its box, one unit a pixel, so its 11 px labels
  // stay 11 px: a fixed 960-wide drawing shrunk to a phone's 350 px made them
  // 4 px high (walkthrough). Redrawn when the box's width changes.
  var W, H;

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceTicks(lo, hi, count) {
    var span = hi - lo || 1, step = Math.pow(10, Math.floor(Math.log10(span / count)));
    [1, 2, 5, 10].some(function (m) { if (span / (step * m) <= count) { step *= m; return true; } return false; });
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
    return out;
  }

  // The y axis ends on a tick above the largest value, so no point (a
  // single one included) sits on the plot's top edge; the ticks come along.
  function yAxis(lo, max) {
    if (max <= lo) max = lo + 1;
    var ticks = niceTicks(lo, max * 1.1, 4), step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
    var hi = ticks[ticks.length - 1];
    while (hi < max * 1.05) { hi = +(hi + step).toFixed(10); ticks.push(hi); }
    return { hi: hi, ticks: ticks };
  }

  function draw(container, points) {
    W = Math.max(300, Math.round(container.clientWidth || 960));
    H = W < 600 ? 200 : 240;
    container.textContent = "";
    var times = points.map(function (p) { return Date.parse(p.t); });
    var values = [];
    points.forEach(function (p) { values.push(p.score, p.weight); });
    var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
    if (t0 === t1) { t0 -= 3600e3; t1 += 3600e3; }
    var lo = Math.min(0, Math.min.apply(null, values)), axis = yAxis(lo, Math.max.apply(null, values)), hi = axis.hi;
    var x = function (t) { return PAD.left + (t - t0) / (t1 - t0) * (W - PAD.left - PAD.right); };
    var y = function (v) { return H - PAD.bottom - (v - lo) / (hi - lo) * (H - PAD.top - PAD.bottom); };

    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    var title = el("title", {}, svg);
    title.textContent = "Score and weight over " + points.length + " scorings";

    axis.ticks.forEach(function (v) {
      el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), "class": "grid-line" }, svg);
      var label = el("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, svg);
      label.textContent = String(v);
    });
    el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(lo), y2: y(lo), "class": "axis" }, svg);
    el("line", { x1: PAD.left, x2: PAD.left, y1: y(lo), y2: y(hi), "class": "axis" }, svg);
    // The unit of both series, turned to run up the y axis.
    var unit = el("text", { x: 0, y: 0, "text-anchor": "middle", "class": "axis-title",
                            transform: "translate(14," + (PAD.top + (H - PAD.top - PAD.bottom) / 2) + ") rotate(-90)" }, svg);
    unit.textContent = "nats";
    // Narrow, the dates lose their year and the middle one, so they never overlap.
    var narrow = W < 600, stamps = narrow ? [[t0, "start"], [t1, "end"]]
      : [[t0, "start"], [(t0 + t1) / 2, "middle"], [t1, "end"]];
    stamps.forEach(function (stamp) {
      var label = el("text", { x: x(stamp[0]), y: H - 8, "text-anchor": stamp[1] }, svg);
      label.textContent = new Date(stamp[0]).toISOString().slice(narrow ? 5 : 0, 16).replace("T", " ");
    });

    function path(key) {
      return points.map(function (p, i) { return (i ? "L" : "M") + x(times[i]).toFixed(1) + "," + y(p[key]).toFixed(1); }).join("");
    }
    el("path", { d: path("score"), "class": "series-score", "stroke-dasharray": "3 3" }, svg);
    el("path", { d: path("weight"), "class": "series-weight" }, svg);
    points.forEach(function (p, i) {
      var dot = el("circle", { cx: x(times[i]), cy: y(p.score), r: 3.5, "class": "dot-score" }, svg);
      // The weight gets its own mark (a line of one point draws nothing),
      // hollow, so a score of the same value shows through it.
      el("rect", { x: x(times[i]) - 5, y: y(p.weight) - 5, width: 10, height: 10, "class": "dot-weight" }, svg);
      var tip = el("title", {}, dot);
      tip.textContent = p.t.slice(0, 16).replace("T", " ") + ": score " + p.score.toFixed(3) + " nats, weight " + p.weight.toFixed(3) + " nats";
    });
    container.appendChild(svg);
  }

  function init() {
    document.querySelectorAll(".chart[data-series]").forEach(function (container) {
      var source = document.getElementById(container.dataset.series);
      if (!source) return;
      var points = JSON.parse(source.textContent);
      if (!points.length) return;
      draw(container, points);
      var drawnAt = container.clientWidth;
      window.addEventListener("resize", function () {
        if (container.clientWidth !== drawnAt) { drawnAt = container.clientWidth; draw(container, points); }
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
