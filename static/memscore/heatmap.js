// Draws a run's memories × responses heatmap on one <canvas>, with its keys
// and response numbers as text beside it.
//
// The payload (see scoring/heatmap/payload.py) is flat and row-major. Every
// cell's colour is computed once into a Uint32Array; a draw copies those
// colours into one ImageData, so 500 × 2,000 cells draw in milliseconds.
// Model text (keys, responses) only ever reaches the page via textContent;
// the cell detail is HTML rendered (and escaped) by the server.
//
// Sections, in order: the formulas (mirrors of scoring.maths); loading and
// decoding; layout and drawing (cell sizes, the canvas, row and column
// labels); the URL's state (sort, zoom, scroll in the hash); pointer and
// keyboard (tooltip, focus ring, opening a cell); the PNG figure
// (heatmap_figure.js draws it).
(function () {
  "use strict";

  // ---- The formulas, as scoring.maths defines them ----
  // tests/test_maths_mirrors.py runs these with node and checks they agree.
  // `zero` and `harm` are the payload's thresholds (maths.ZERO_THRESHOLD and
  // maths.HARMFUL_NATS).

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
  var grid = document.getElementById("heatmap-grid");
  var rowLabels = document.getElementById("heatmap-rows");
  var colLabels = document.getElementById("heatmap-cols");
  var colCursor = document.getElementById("heatmap-col-cursor");
  var focusRing = document.getElementById("heatmap-focus");
  var announce = document.getElementById("heatmap-announce");
  var statusEl = document.getElementById("heatmap-status");
  var tooltip = document.getElementById("heatmap-tooltip");
  var sortSelect = document.getElementById("heatmap-sort");
  var zoomSelect = document.getElementById("heatmap-zoom");
  var pngButton = document.getElementById("heatmap-png");
  var ticks = document.getElementById("heatmap-ticks");
  var sizeEl = document.getElementById("heatmap-size");
  var detail = document.getElementById("cell-detail");

  // The cell states, as scoring.heatmap.matrix numbers them.
  var SCORED = 0, FAILED = 1, MISSING = 2, UNAFFECTED = 3, NOT_IN_RUN = 4;
  // Largest canvas we allow ourselves: browsers refuse far larger ones and
  // memory grows with the pixel count.
  var MAX_PIXELS = 40e6, MAX_SIDE = 16000;
  // Rows are at least this tall, so every memory's key beside its row can be
  // read; columns may be as narrow as one pixel (2,000 responses).
  var MIN_ROW = 14;
  // "Fit the width" grows rows with the cells up to FIT_ROW px, and cells up
  // to FIT_CELL px wide: ten times that height. Past about 10:1 a cell reads
  // as a bar rather than one square of a grid, and a 2-response run would
  // otherwise stretch to two 600 px stripes. 320 px still lets a 4-response
  // run fill a 1,280 px screen's panel (~1,100 px beside its keys).
  var FIT_ROW = 32, FIT_CELL = 10 * FIT_ROW;
  // Clear space between two column labels (px), beyond their own widths.
  var LABEL_SPACE = 6;

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
  // Same stops as .legend .ramp in app.css (and the PNG figure's legend).
  var HEAT_STOPS = [[0, "#ffffff"], [0.25, "#fde68a"], [0.5, "#f59e0b"], [0.75, "#dc2626"], [1, "#7f1d1d"]];
  var HEAT = ramp(HEAT_STOPS, 256);
  var HARM = ramp([[0, "#dbeafe"], [1, "#1d4ed8"]], 256);
  // Same colours as the .swatch rules in app.css (and the PNG figure's legend).
  var WHITE = rgba("#ffffff"), NOT_SCORED = rgba("#eef0f4"), OUTSIDE_RUN = rgba("#cfd4dc");
  var HATCH_DARK = rgba("#8a919e"), HATCH_LIGHT = rgba("#cdd2da");
  // Before the memory's first appearance (exactly 0, not asked of the server):
  // white with dots, so it never reads as the pale yellow of a small importance.
  var DOT = rgba("#8b7a55");
  // Markers in the colour table for the patterns: never a real colour (alpha 0).
  var HATCHED = 0, DOTTED = 1;

  var d = null;          // the payload
  var rows = 0, cols = 0;
  var value, state, color, rowMax, rowSum, vmax = 1;
  // order[p] is the memory (payload row) shown at display row p; position
  // is its inverse.
  var order, position;
  // A row is rowH page pixels tall but drawn as lineH canvas lines, which
  // CSS stretches (pixelated): rows stretched for their labels cost a few
  // lines each, not 14 (a 500 × 2,000 canvas stays ~4 M pixels, not 14 M).
  var cellW = 1, rowH = MIN_ROW, lineH = MIN_ROW;
  // The columns whose numbers are shown (labelColumns), for the PNG too.
  var labelled = [];
  // The focused cell, by memory and column (so a re-sort keeps it).
  var focus = { row: 0, col: 0 }, focused = false, touched = false;
  var hover = null, hoverFrame = 0;

  // While the run is active the cells are fetched again every few seconds.
  var REFRESH_MS = 3000;
  var MIN_RING = 12;
  var attached = false;
  var liveNotice = document.getElementById("heatmap-live");

  // ---- Loading and decoding ----

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

  // The run's status where the page states it (the header's badge, the live
  // notice, the legend's grey), as each refresh finds it: the page was
  // rendered while the run was queued, and said so after it ended.
  function showStatus() {
    var badge = document.getElementById("heatmap-run-status");
    if (badge && d.status_label) {
      badge.textContent = d.status_label;
      badge.className = "badge status-" + d.status;
    }
    var live = document.getElementById("heatmap-live-status");
    if (live && d.status_label) live.textContent = d.status_label;
    var missing = document.getElementById("heatmap-missing-words");
    if (missing) missing.textContent = d.active ? "not scored yet" : "never scored: the run ended first";
    // The PNG's subtitle names it too (" · <status> ·" as the page rendered it).
    if (d.status_label && canvas.dataset.status !== d.status_label) {
      canvas.dataset.subtitle = canvas.dataset.subtitle.replace(" · " + canvas.dataset.status + " ·",
                                                                " · " + d.status_label + " ·");
      canvas.dataset.status = d.status_label;
    }
  }

  function start(payload) {
    performance.mark("heatmap-parsed");
    d = payload;
    rows = d.rows; cols = d.cols;
    sizeEl.textContent = rows + (rows === 1 ? " memory × " : " memories × ") + cols + (cols === 1 ? " response" : " responses");
    showStatus();
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
      resort();  // a refresh keeps the chosen order, zoom and scroll
      return;
    }
    grid.hidden = false;
    var saved = readHash();
    sortOrder();
    draw();
    scrollTo(saved);
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
    var outside = d.not_in_run || [];
    for (j = 0; j < outside.length; j++) state.fill(NOT_IN_RUN, outside[j][0], outside[j][0] + outside[j][1]);
    var before = d.unaffected || [];
    for (j = 0; j < before.length; j++) state.fill(UNAFFECTED, before[j][0], before[j][0] + before[j][1]);

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
    // The two greys are named only where the run has them (a live run's
    // light grey stays: it is why the map fills in); so are failed and
    // unaffected cells.
    showSwatch("missing", d.active || d.missing.length > 0);
    showSwatch("not_in_run", outside.length > 0);
    showSwatch("failed", state.indexOf(FAILED) !== -1);
    showSwatch("unaffected", before.length > 0);

    color = new Uint32Array(n);
    for (i = 0; i < n; i++) {
      var s = state[i];
      if (s === FAILED) color[i] = HATCHED;
      else if (s === MISSING) color[i] = NOT_SCORED;
      else if (s === NOT_IN_RUN) color[i] = OUTSIDE_RUN;
      else if (s === UNAFFECTED) color[i] = DOTTED;
      else {
        var val = value[i];
        if (cellImportance(val, zero) > 0) color[i] = HEAT[Math.max(12, Math.min(255, Math.round(val / vmax * 255)))];
        else if (isHarmful(val, d.harm)) color[i] = HARM[Math.max(40, Math.min(255, Math.round(-val / vmax * 255)))];
        else color[i] = WHITE;
      }
    }
  }

  function showSwatch(name, shown) {
    var item = document.querySelector('.legend > [data-swatch="' + name + '"]');
    if (item) item.hidden = !shown;
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

  // ---- Layout and drawing ----

  function sortOrder() {
    var how = sortSelect.value, key = how === "max" ? rowMax : how === "sum" ? rowSum : null;
    var idx = Array.from({ length: rows }, function (_, r) { return r; });
    if (key) idx.sort(function (a, b) { return key[b] - key[a] || a - b; });
    order = Int32Array.from(idx);
    position = new Int32Array(rows);
    for (var p = 0; p < rows; p++) position[order[p]] = p;
  }

  function cellSizes() {
    var chosen = zoomSelect.value, s;
    if (chosen === "fit") {
      s = Math.floor((scroller.clientWidth - rowLabels.offsetWidth - 2) / cols);
      s = Math.max(1, Math.min(FIT_CELL, s));
    } else s = parseInt(chosen, 10) || 1;
    // Square cells up to FIT_ROW; wider ones keep that height (the zoom
    // choices all stay below it).
    var h = Math.max(Math.min(s, FIT_ROW), MIN_ROW);
    var fits = Math.floor(MAX_PIXELS / (rows * h * cols));
    cellW = Math.max(1, Math.min(s, fits, Math.floor(MAX_SIDE / cols) || 1));
    rowH = Math.max(1, Math.min(h, Math.floor(MAX_SIDE / rows) || 1));
    // Four lines keep one period of the failed cells' hatching.
    lineH = rowH > cellW ? Math.min(rowH, 4) : rowH;
  }

  function draw() {
    // The row labels first: "fit" sizes the cells to the width beside them
    // (sized before them, the grid came out wider than its box). Their font
    // follows the row height, so a fit is sized once more at that height.
    labelRows();
    cellSizes();
    grid.style.setProperty("--row-h", rowH + "px");
    if (zoomSelect.value === "fit") {
      cellSizes();
      grid.style.setProperty("--row-h", rowH + "px");
    }
    var W = cols * cellW, H = rows * lineH;
    canvas.width = W; canvas.height = H;
    canvas.style.width = W + "px";
    canvas.style.height = rows * rowH + "px";
    var img = ctx.createImageData(W, H), buf = new Uint32Array(img.data.buffer);
    // The hatching repeats every 4 pixel lines, so each row draws at most 4
    // lines cell by cell and copies them down the rest of its height.
    var drawn = Math.min(4, lineH);
    for (var r = 0; r < rows; r++) {
      var src = order[r] * cols, y0 = r * lineH;
      for (var dy = 0; dy < drawn; dy++) drawLine(buf, src, y0 + dy, W);
      for (var copied = drawn; copied < lineH; copied *= 2) {
        var lines = Math.min(copied, lineH - copied);
        buf.copyWithin((y0 + copied) * W, y0 * W, (y0 + lines) * W);
      }
    }
    ctx.putImageData(img, 0, 0);
    labelColumns();
    // The sticky labels cover the scroller's edges: a focused canvas is
    // scrolled into view beside them, not under them.
    scroller.style.scrollPaddingLeft = rowLabels.offsetWidth + "px";
    scroller.style.scrollPaddingTop = colLabels.offsetHeight + "px";
    showFocus();
  }

  function drawLine(buf, src, y, W) {
    var p = y * W;
    for (var c = 0; c < cols; c++, p += cellW) {
      var col = color[src + c];
      if (col === HATCHED) {
        // Diagonal hatching in page pixels, so failed areas read as one pattern.
        for (var dx = 0, x0 = c * cellW; dx < cellW; dx++) buf[p + dx] = (x0 + dx + y) % 4 === 0 ? HATCH_DARK : HATCH_LIGHT;
      } else if (col === DOTTED) {
        // A dot every 3 pixels on every other line (the 4-line period the rows repeat).
        for (var ex = 0, x1 = c * cellW; ex < cellW; ex++) buf[p + ex] = y % 2 === 0 && (x1 + ex) % 3 === 0 ? DOT : WHITE;
      } else if (cellW === 1) {
        buf[p] = col;
      } else {
        buf.fill(col, p, p + cellW);
      }
    }
  }

  // One <li> per row, its memory's key as text, in display order.
  function labelRows() {
    while (rowLabels.children.length < rows) rowLabels.appendChild(document.createElement("li"));
    while (rowLabels.children.length > rows) rowLabels.lastChild.remove();
    for (var p = 0; p < rows; p++) {
      var li = rowLabels.children[p];
      li.textContent = d.keys[order[p]];
      li.title = d.keys[order[p]];
    }
  }

  // The width of one digit in the labels' font (tabular figures: every digit
  // is as wide), measured once on a label like theirs.
  var digitW = 0;
  function labelWidth(number) {
    if (!digitW) {
      var probe = document.createElement("span");
      probe.className = "hm-tick";
      probe.textContent = "0000000000";
      colLabels.appendChild(probe);
      digitW = probe.offsetWidth / 10 || 7;
      probe.remove();
    }
    return String(number).length * digitW;
  }

  // The columns that get their response number: every one where the widest
  // number fits a cell, else every step-th (2, 5, 10, … so the numbers are
  // round and evenly spaced), the smallest step at which the widest
  // number fits. The first column is labelled too where it is not round and
  // its number stands well clear of the next (at least half a step), so a
  // reader sees where the numbering starts without a cramped pair (1 2 _ 4).
  function labelledColumns() {
    var numbers = d.response_number, widest = 0, c;
    for (c = 0; c < cols; c++) widest = Math.max(widest, labelWidth(numbers[c]));
    var steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], step = 2000;
    for (var k = 0; k < steps.length; k++) {
      if (steps[k] * cellW >= widest + LABEL_SPACE) { step = steps[k]; break; }
    }
    var out = [];
    for (c = 0; c < cols; c++) if (numbers[c] % step === 0) out.push(c);
    var next = out[0];
    if (next === undefined) return [0];  // no round number among them: at least the first
    if (next > step / 2 &&
        next * cellW >= (labelWidth(numbers[0]) + labelWidth(numbers[next])) / 2 + LABEL_SPACE) out.unshift(0);
    return out;
  }

  function labelColumns() {
    colLabels.style.width = cols * cellW + "px";
    var old = colLabels.querySelectorAll(".hm-tick");
    for (var k = 0; k < old.length; k++) old[k].remove();
    labelled = labelledColumns();
    labelled.forEach(function (c) {
      var span = document.createElement("span");
      span.className = "hm-tick";
      span.textContent = d.response_number[c];
      span.style.left = (c * cellW + cellW / 2) + "px";
      colLabels.appendChild(span);
    });
  }

  function resort() {
    var at = scrollState();
    sortOrder();
    draw();
    scrollTo(at);
    writeHash();
  }

  function rezoom() {
    var at = scrollState();
    draw();
    scrollTo(at);
    writeHash();
  }

  // ---- The URL's state: #sort=…&zoom=…&col=…&row=… ----
  // In the hash, so a reload or a shared link restores the view without
  // asking the server; scroll is in cells, so it survives a change of zoom.

  function readHash() {
    var params = new URLSearchParams(window.location.hash.slice(1));
    choose(sortSelect, params.get("sort"));
    choose(zoomSelect, params.get("zoom"));
    return { col: parseInt(params.get("col"), 10) || 0, row: parseInt(params.get("row"), 10) || 0 };
  }

  function choose(select, wanted) {
    for (var k = 0; k < select.options.length; k++) {
      if (select.options[k].value === wanted) { select.value = wanted; return; }
    }
  }

  function writeHash() {
    var at = scrollState(), params = new URLSearchParams();
    params.set("sort", sortSelect.value);
    params.set("zoom", zoomSelect.value);
    params.set("col", at.col);
    params.set("row", at.row);
    history.replaceState(history.state, "", "#" + params.toString());
  }

  function scrollState() {
    return { col: Math.round(scroller.scrollLeft / cellW), row: Math.round(scroller.scrollTop / rowH) };
  }

  function scrollTo(at) {
    scroller.scrollLeft = at.col * cellW;
    scroller.scrollTop = at.row * rowH;
  }

  // ---- Pointer and keyboard ----

  function cellAt(event) {
    var rect = canvas.getBoundingClientRect();
    var x = (event.clientX - rect.left) * (canvas.width / rect.width);
    var y = (event.clientY - rect.top) * (canvas.height / rect.height);
    var c = Math.floor(x / cellW), p = Math.floor(y / lineH);
    if (c < 0 || p < 0 || c >= cols || p >= rows) return null;
    return { row: order[p], col: c };
  }

  function describe(i) {
    if (state[i] === FAILED) return "failed: the score call failed, value unknown";
    // An ended run's grey cells never will be (a cancelled run stopped first).
    if (state[i] === MISSING) return d.active ? "not scored yet" : "never scored: the run ended first (no value, not zero)";
    if (state[i] === NOT_IN_RUN) return "not in this run: outside the window it scored this memory over (no value, not zero)";
    if (state[i] === UNAFFECTED) return "before the memory: unaffected (exactly 0, the response comes before the memory's first appearance)";
    return estimated(valueWords(value[i]));
  }

  function valueWords(v) {
    if (cellImportance(v, d.zero) > 0) return "importance " + fmt(v, 3) + " nats";
    if (isHarmful(v, d.harm)) return "harmful: " + fmt(v, 3) + " nats (predicted better without it)";
    if (isBetterWithout(v, d.zero)) return "slightly better without it (" + fmt(v, 3) + " nats, not flagged)";
    return "no effect (" + fmt(v, 3) + ", counts as zero)";
  }

  // An estimate run's values are fitted, never measured: every cell says so.
  function estimated(words) {
    if (d.kind !== "estimate") return words;
    return "estimated: " + words + " (fitted to " + d.estimate.ablations + " random ablations, not measured)";
  }

  // "Response #k (conversation entry i)": the one numbering (docs/scoring.md).
  function responseName(col) {
    return "Response #" + d.response_number[col] + " (conversation entry " + d.response_index[col] + ")";
  }

  function showTooltip(cell, x, y) {
    if (!cell) { tooltip.hidden = true; return; }
    var parts = tooltip.children;
    parts[0].textContent = d.keys[cell.row];
    parts[1].textContent = responseName(cell.col) + ": " + d.snippets[cell.col];
    parts[2].textContent = describe(cell.row * cols + cell.col);
    tooltip.hidden = false;
    var left = x + 14, top = y + 14;
    var w = tooltip.offsetWidth, h = tooltip.offsetHeight;
    if (left + w > window.innerWidth - 8) left = x - w - 14;
    if (top + h > window.innerHeight - 8) top = y - h - 14;
    tooltip.style.left = Math.max(4, left) + "px";
    tooltip.style.top = Math.max(4, top) + "px";
    markColumn(cell.col);
  }

  // The column's number above it, wherever the labels' steps fall.
  function markColumn(col) {
    colCursor.hidden = col === null;
    if (col === null) return;
    colCursor.textContent = "#" + d.response_number[col];
    colCursor.style.left = (col * cellW + cellW / 2) + "px";
  }

  function openCell(cell) {
    var url = canvas.dataset.cellBase + d.memory_ids[cell.row] + "/" + d.response_ids[cell.col] + "/";
    if (!window.htmx) { window.location.href = url; return; }
    // The fragment is rendered and escaped by the server (heatmap_cell).
    window.htmx.ajax("GET", url, { target: detail, swap: "innerHTML" }).then(function () {
      detail.scrollIntoView({ behavior: "smooth", block: "nearest" });
    });
  }

  var KEYS = {
    ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0],
    PageUp: [-10, 0], PageDown: [10, 0], Home: [0, -Infinity], End: [0, Infinity],
  };

  function onKey(event) {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openCell(focus);
      return;
    }
    if (event.key === "Escape") { tooltip.hidden = true; return; }
    var move = KEYS[event.key];
    if (!move) return;
    event.preventDefault();
    var p = Math.max(0, Math.min(rows - 1, position[focus.row] + move[0]));
    var c = Math.max(0, Math.min(cols - 1, focus.col + move[1]));
    focus = { row: order[p], col: c };
    showFocus();
    revealFocus();
  }

  // The ring around the focused cell, its tooltip and its words for a screen reader.
  function showFocus() {
    focusRing.hidden = !focused;
    if (!focused || !order) return;
    var p = position[focus.row];
    // Never smaller than MIN_RING px, centred on the cell: on a phone a cell
    // can be 3 px wide, and a ring that size was all but invisible.
    var w = Math.max(cellW, MIN_RING), h = Math.max(rowH, MIN_RING);
    focusRing.style.left = focus.col * cellW - (w - cellW) / 2 + "px";
    focusRing.style.top = p * rowH - (h - rowH) / 2 + "px";
    focusRing.style.width = w + "px";
    focusRing.style.height = h + "px";
    var box = focusRing.getBoundingClientRect();
    showTooltip(focus, box.right, box.bottom);
    var text = d.keys[focus.row] + " × " + responseName(focus.col).toLowerCase() + ": " + describe(focus.row * cols + focus.col);
    announce.textContent = text;
    canvas.setAttribute("aria-label", "Heatmap cell " + text);
  }

  // Scroll the focused cell out from under the sticky labels.
  function revealFocus() {
    var labelW = rowLabels.offsetWidth, headH = colLabels.offsetHeight;
    var x = focus.col * cellW, y = position[focus.row] * rowH;
    var viewW = scroller.clientWidth - labelW, viewH = scroller.clientHeight - headH;
    if (x < scroller.scrollLeft) scroller.scrollLeft = x;
    else if (x + cellW > scroller.scrollLeft + viewW) scroller.scrollLeft = x + cellW - viewW;
    if (y < scroller.scrollTop) scroller.scrollTop = y;
    else if (y + rowH > scroller.scrollTop + viewH) scroller.scrollTop = y + rowH - viewH;
    showFocus();
  }

  function attach() {
    canvas.addEventListener("mousemove", function (event) {
      hover = event;
      if (!hoverFrame) hoverFrame = requestAnimationFrame(function () {
        hoverFrame = 0;
        showTooltip(cellAt(hover), hover.clientX, hover.clientY);
      });
    });
    canvas.addEventListener("mouseleave", function () { tooltip.hidden = true; markColumn(null); });
    // A press focuses the canvas before its click: the cell pressed is the
    // one focused, so the focus handler names it, not the first cell in view.
    canvas.addEventListener("mousedown", function (event) {
      var cell = cellAt(event);
      if (cell) { focus = cell; touched = true; }
    });
    canvas.addEventListener("click", function (event) {
      var cell = cellAt(event);
      if (!cell) return;
      focus = cell; touched = true;
      // The ring, the announcement and the canvas's aria-label follow the click as they follow the keys.
      showFocus();
      openCell(cell);
    });
    canvas.addEventListener("keydown", onKey);
    canvas.addEventListener("focus", function () {
      if (!touched) {
        // The first focus lands on the first cell in view.
        var at = scrollState();
        focus = { row: order[Math.min(at.row, rows - 1)], col: Math.min(at.col, cols - 1) };
        touched = true;
      }
      focused = true;
      showFocus();
    });
    canvas.addEventListener("blur", function () { focused = false; showFocus(); tooltip.hidden = true; markColumn(null); });
    sortSelect.addEventListener("change", resort);
    zoomSelect.addEventListener("change", rezoom);
    var scrollTimer = 0;
    scroller.addEventListener("scroll", function () {
      clearTimeout(scrollTimer);
      scrollTimer = setTimeout(writeHash, 150);
    });
    var resizeTimer = 0;
    window.addEventListener("resize", function () {
      if (zoomSelect.value !== "fit") return;
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(rezoom, 150);
    });
    pngButton.addEventListener("click", downloadFigure);
  }

  // ---- The PNG: a labelled figure (heatmap_figure.js) ----

  function downloadFigure() {
    var sorted = sortSelect.options[sortSelect.selectedIndex].text;
    var figure = window.memscoreHeatmapFigure({
      image: canvas, cellW: cellW, rowH: rowH, height: rows * rowH,
      keys: Array.from(order, function (r) { return d.keys[r]; }),
      numbers: d.response_number, labelled: labelled,
      title: canvas.dataset.title, subtitle: canvas.dataset.subtitle,
      rowsTitle: "Memory, sorted " + sorted,
      colsTitle: "Response # (the k-th assistant response of the conversation)",
      heatStops: HEAT_STOPS,
      ticks: Array.from(ticks.children, function (s) { return s.textContent; }),
      legend: Array.from(document.querySelectorAll(".legend > [data-swatch]:not([hidden])"), function (el) {
        return { swatch: el.dataset.swatch, text: el.textContent.trim() };
      }),
      scaleTitle: document.querySelector(".legend .scale > span").textContent.trim(),
    });
    figure.toBlob(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      // As the CSV's and JSON's names (export.filename): the run's status in it.
      a.download = "memscore-run-" + d.run + (d.agent ? "-" + d.agent : "") + "-" + d.status + "-heatmap.png";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
    }, "image/png");
  }
})();
