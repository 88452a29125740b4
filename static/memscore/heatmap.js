// Draws a run's memories × responses heatmap on one <canvas>.
//
// The payload (see scoring/heatmap/payload.py) is flat and row-major. Every
// cell's colour is computed once into a Uint32Array; a draw copies those
// colours into one ImageData, so 500 × 2,000 cells draw in milliseconds.
// Model text (keys, responses) only ever reaches the page via textContent;
// the cell detail is HTML rendered (and escaped) by the server.
(function () {
  "use strict";

  // The formulas, as scoring.maths defines them; tests/test_maths_mirrors.py
  // runs these with node and checks they agree. `zero` and `harm` are the
  // payload's thresholds (maths.ZERO_THRESHOLD and maths.HARMFUL_NATS).

  // mirrors scoring.maths.cell_importance (NaN, a failed cell, stays NaN)
  function cellImportance(delta, zero) {
    if (delta !== delta) return NaN;
    return delta > zero ? delta : 0;
  }

  // mirrors scoring.maths.is_harmful
  function isHarmful(netDelta, harm) {
    return netDelta < -harm;
  }

  // mirrors scoring.maths.is_better_without
  function isBetterWithout(delta, zero) {
    return delta < -zero;
  }

  // mirrors scoring.maths.importance_sum and importance_max over the cells
  // start..end of `values` (NaN = failed, left out). max is 0, not None, when
  // nothing was scored: it only orders rows. positives counts the cells with
  // an importance above zero (for the colour scale).
  function rowImportance(values, start, end, zero) {
    var sum = 0, max = 0, positives = 0;
    for (var i = start; i < end; i++) {
      var x = cellImportance(values[i], zero);
      if (!(x > 0)) continue;
      sum += x; positives++;
      if (x > max) max = x;
    }
    return { sum: sum, max: max, positives: positives };
  }

  if (typeof document === "undefined") {
    // Loaded by node for tests/test_maths_mirrors.py: only the formulas.
    if (typeof module !== "undefined") {
      module.exports = {
        cellImportance: cellImportance, isHarmful: isHarmful,
        isBetterWithout: isBetterWithout, rowImportance: rowImportance,
      };
    }
    return;
  }

  var canvas = document.getElementById("heatmap-canvas");
  if (!canvas) return;
  var ctx = canvas.getContext("2d");
  var scroller = document.getElementById("heatmap-scroll");
  var statusEl = document.getElementById("heatmap-status");
  var tooltip = document.getElementById("heatmap-tooltip");
  var sortSelect = document.getElementById("heatmap-sort");
  var zoomSelect = document.getElementById("heatmap-zoom");
  var pngButton = document.getElementById("heatmap-png");
  var ticks = document.getElementById("heatmap-ticks");
  var sizeEl = document.getElementById("heatmap-size");
  var detail = document.getElementById("cell-detail");

  var SCORED = 0, FAILED = 1, MISSING = 2;
  // Largest canvas we allow ourselves: browsers refuse far larger ones and
  // memory grows with the pixel count.
  var MAX_PIXELS = 40e6, MAX_SIDE = 16000;

  // Little-endian RGBA packed as one 32-bit word: 0xAABBGGRR.
  function rgba(hex) {
    var n = parseInt(hex.slice(1), 16);
    return (0xff << 24 | (n & 0xff) << 16 | (n >> 8 & 0xff) << 8 | n >> 16) >>> 0;
  }
  function ramp(stops, size) {
    var out = new Uint32Array(size), rgb = stops.map(function (s) {
      var n = parseInt(s[1].slice(1), 16);
      return [s[0], n >> 16, n >> 8 & 0xff, n & 0xff];
    });
    for (var i = 0; i < size; i++) {
      var t = i / (size - 1), k = 1;
      while (k < rgb.length - 1 && rgb[k][0] < t) k++;
      var a = rgb[k - 1], b = rgb[k], f = (t - a[0]) / (b[0] - a[0] || 1);
      var r = Math.round(a[1] + f * (b[1] - a[1]));
      var g = Math.round(a[2] + f * (b[2] - a[2]));
      var bl = Math.round(a[3] + f * (b[3] - a[3]));
      out[i] = (0xff << 24 | bl << 16 | g << 8 | r) >>> 0;
    }
    return out;
  }
  // Same stops as .legend .ramp in app.css.
  var HEAT = ramp([[0, "#ffffff"], [0.25, "#fde68a"], [0.5, "#f59e0b"], [0.75, "#dc2626"], [1, "#7f1d1d"]], 256);
  var HARM = ramp([[0, "#dbeafe"], [1, "#1d4ed8"]], 256);
  var WHITE = rgba("#ffffff"), NOT_SCORED = rgba("#eef0f4");
  var HATCH_DARK = rgba("#8a919e"), HATCH_LIGHT = rgba("#cdd2da");
  var HATCHED = 0; // marker in the colour table: never a real colour (alpha 0)

  var d = null;          // the payload
  var rows = 0, cols = 0;
  var value, state, color, rowMax, rowSum, order, scale = 1, vmax = 1;
  var hover = null, hoverFrame = 0;

  // While the run is active the cells are fetched again every few seconds.
  var REFRESH_MS = 3000;
  var attached = false;
  var liveNotice = document.getElementById("heatmap-live");

  statusEl.textContent = "Loading the cells…";
  load();

  function load() {
    fetch(canvas.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("the server answered " + r.status);
        performance.mark("heatmap-response");
        return r.json();
      })
      .then(start)
      .catch(function (err) {
        statusEl.hidden = false;
        statusEl.textContent = "Could not load the heatmap (" + err.message + "). The CSV download still works.";
      });
  }

  function start(payload) {
    performance.mark("heatmap-parsed");
    d = payload;
    rows = d.rows; cols = d.cols;
    sizeEl.textContent = rows + " memories × " + cols + " responses";
    if (d.active) setTimeout(load, REFRESH_MS);
    else if (liveNotice) liveNotice.hidden = true;
    if (!rows || !cols) {
      statusEl.textContent = d.active
        ? "No cells yet: the run has not scored anything. This page updates itself."
        : "This run has no cells to show.";
      document.body.dataset.heatmapReady = "empty";
      return;
    }
    decode();
    performance.mark("heatmap-decoded");
    statusEl.hidden = true;
    if (attached) {
      resort();  // a refresh keeps the chosen order and zoom
      return;
    }
    order = new Int32Array(rows);
    for (var r = 0; r < rows; r++) order[r] = r;
    draw();
    attach();
    attached = true;
    pngButton.disabled = false;
    performance.mark("heatmap-ready");
    document.body.dataset.heatmapReady = "1";
  }

  function decode() {
    var n = rows * cols, unit = d.unit, zero = d.zero, v = d.values, i, j, r;
    value = new Float32Array(n);
    state = new Uint8Array(n);
    for (i = 0; i < n; i++) {
      if (v[i] === null) { state[i] = FAILED; value[i] = NaN; } else value[i] = v[i] * unit;
    }
    for (j = 0; j < d.missing.length; j++) state.fill(MISSING, d.missing[j][0], d.missing[j][0] + d.missing[j][1]);

    // Importance per row, and the colour scale's top: the 99th percentile of
    // positive cells, so one outlier does not wash every other cell out.
    rowMax = new Float32Array(rows); rowSum = new Float64Array(rows);
    var top = 0, positives = 0;
    for (r = 0; r < rows; r++) {
      var row = rowImportance(value, r * cols, (r + 1) * cols, zero);
      rowMax[r] = row.max; rowSum[r] = row.sum;
      positives += row.positives;
      if (row.max > top) top = row.max;
    }
    vmax = top || 1;
    if (positives >= 100) {
      var bins = new Uint32Array(1024), want = positives * 0.99, seen = 0;
      for (i = 0; i < n; i++) if (cellImportance(value[i], zero) > 0) bins[Math.min(1023, (value[i] / top * 1024) | 0)]++;
      for (j = 0; j < 1024; j++) { seen += bins[j]; if (seen >= want) break; }
      vmax = Math.max(zero * 2, top * (j + 1) / 1024);
    }
    legend(top);

    color = new Uint32Array(n);
    for (i = 0; i < n; i++) {
      var s = state[i];
      if (s === FAILED) color[i] = HATCHED;
      else if (s === MISSING) color[i] = NOT_SCORED;
      else {
        var val = value[i];
        if (cellImportance(val, zero) > 0) color[i] = HEAT[Math.max(12, Math.min(255, Math.round(val / vmax * 255)))];
        else if (isHarmful(val, d.harm)) color[i] = HARM[Math.max(40, Math.min(255, Math.round(-val / vmax * 255)))];
        else color[i] = WHITE;
      }
    }
  }

  function legend(top) {
    var spans = ticks.children;
    for (var k = 0; k < 5; k++) spans[k].textContent = tick(vmax * k / 4);
    if (top > vmax) spans[4].textContent = "≥ " + tick(vmax);
  }

  // Few digits, so five labels fit under the colour ramp.
  function tick(x) {
    return Number(x).toFixed(x >= 100 || x === 0 ? 0 : x >= 10 ? 1 : 2);
  }

  function fmt(x, digits) {
    return Number(x).toFixed(digits);
  }

  function cellSize() {
    var chosen = zoomSelect.value, s;
    if (chosen === "fit") {
      s = Math.floor((scroller.clientWidth - 2) / cols);
      s = Math.max(1, Math.min(32, s));
    } else s = parseInt(chosen, 10);
    var fits = Math.floor(Math.sqrt(MAX_PIXELS / (rows * cols)));
    return Math.max(1, Math.min(s, fits, Math.floor(MAX_SIDE / cols) || 1, Math.floor(MAX_SIDE / rows) || 1));
  }

  function draw() {
    scale = cellSize();
    var s = scale, W = cols * s, H = rows * s;
    canvas.width = W; canvas.height = H;
    var img = ctx.createImageData(W, H), buf = new Uint32Array(img.data.buffer);
    for (var r = 0; r < rows; r++) {
      var src = order[r] * cols, y0 = r * s;
      for (var c = 0; c < cols; c++) {
        var col = color[src + c], x0 = c * s;
        for (var dy = 0; dy < s; dy++) {
          var p = (y0 + dy) * W + x0;
          if (col === HATCHED) {
            // Diagonal hatching in page pixels, so failed areas read as one pattern.
            for (var dx = 0; dx < s; dx++) buf[p + dx] = (x0 + dx + y0 + dy) % 4 === 0 ? HATCH_DARK : HATCH_LIGHT;
          } else if (s === 1) {
            buf[p] = col;
          } else {
            buf.fill(col, p, p + s);
          }
        }
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function cellAt(event) {
    var rect = canvas.getBoundingClientRect();
    var x = (event.clientX - rect.left) * (canvas.width / rect.width);
    var y = (event.clientY - rect.top) * (canvas.height / rect.height);
    var c = Math.floor(x / scale), r = Math.floor(y / scale);
    if (c < 0 || r < 0 || c >= cols || r >= rows) return null;
    return { row: order[r], col: c, i: order[r] * cols + c };
  }

  function describe(i) {
    if (state[i] === FAILED) return "failed: the score call failed, value unknown";
    if (state[i] === MISSING) return "not scored yet";
    var v = value[i];
    if (cellImportance(v, d.zero) > 0) return "importance " + fmt(v, 3) + " nats";
    if (isHarmful(v, d.harm)) return "harmful: " + fmt(v, 3) + " nats (predicted better without it)";
    if (isBetterWithout(v, d.zero)) return "slightly better without it (" + fmt(v, 3) + " nats, not flagged)";
    return "no effect (" + fmt(v, 3) + ", counts as zero)";
  }

  function showTooltip(event) {
    var cell = cellAt(event);
    if (!cell) { tooltip.hidden = true; return; }
    var parts = tooltip.children;
    parts[0].textContent = d.keys[cell.row];
    parts[1].textContent = "Response " + d.response_index[cell.col] + ": " + d.snippets[cell.col];
    parts[2].textContent = describe(cell.i);
    tooltip.hidden = false;
    var x = event.clientX + 14, y = event.clientY + 14;
    var w = tooltip.offsetWidth, h = tooltip.offsetHeight;
    if (x + w > window.innerWidth - 8) x = event.clientX - w - 14;
    if (y + h > window.innerHeight - 8) y = event.clientY - h - 14;
    tooltip.style.left = Math.max(4, x) + "px";
    tooltip.style.top = Math.max(4, y) + "px";
  }

  function openCell(event) {
    var cell = cellAt(event);
    if (!cell) return;
    var url = canvas.dataset.cellBase + d.memory_ids[cell.row] + "/" + d.response_ids[cell.col] + "/";
    if (!window.htmx) { window.location.href = url; return; }
    // The fragment is rendered and escaped by the server (heatmap_cell).
    window.htmx.ajax("GET", url, { target: detail, swap: "innerHTML" }).then(function () {
      detail.scrollIntoView({ behavior: "smooth", block: "nearest" });
    });
  }

  function resort() {
    var how = sortSelect.value, key = how === "max" ? rowMax : how === "sum" ? rowSum : null;
    var idx = Array.from({ length: rows }, function (_, r) { return r; });
    if (key) idx.sort(function (a, b) { return key[b] - key[a] || a - b; });
    order = Int32Array.from(idx);
    draw();
  }

  function attach() {
    canvas.addEventListener("mousemove", function (event) {
      hover = event;
      if (!hoverFrame) hoverFrame = requestAnimationFrame(function () { hoverFrame = 0; showTooltip(hover); });
    });
    canvas.addEventListener("mouseleave", function () { tooltip.hidden = true; });
    canvas.addEventListener("click", openCell);
    sortSelect.addEventListener("change", resort);
    zoomSelect.addEventListener("change", draw);
    var resizeTimer = 0;
    window.addEventListener("resize", function () {
      if (zoomSelect.value !== "fit") return;
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(draw, 150);
    });
    pngButton.addEventListener("click", function () {
      canvas.toBlob(function (blob) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = "memscore-run-" + d.run + "-heatmap.png";
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
      }, "image/png");
    });
  }
})();
