// The heatmap's PNG download as a figure that stands on its own: a title,
// the memory keys beside their rows, response numbers under the columns,
// both axes named, and the legend with its colour scale.
//
// window.memscoreHeatmapFigure(spec) returns a new <canvas>; heatmap.js
// passes the drawn cells (spec.image, shown spec.height pixels tall: cellW ×
// rowH pixels per cell, rows in the order on screen), the columns whose
// numbers the page shows (spec.labelled) and the words of the page's legend,
// so the figure says exactly what the page says.
(function () {
  "use strict";

  var FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif";
  var INK = "#1d2330", MUTED = "#667085", LINE = "#cfd4dc";
  var PAD = 24, MAX_LABEL = 320, MAX_SIDE = 16000;
  var LEGEND_H = 96, RAMP_W = 260;

  function font(ctx, px, weight) {
    ctx.font = (weight || "") + " " + px + "px " + FONT;
  }

  // Cut a label to `width` pixels with an ellipsis.
  function fit(ctx, text, width) {
    if (ctx.measureText(text).width <= width) return text;
    var lo = 0, hi = text.length;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + "…").width <= width) lo = mid; else hi = mid - 1;
    }
    return text.slice(0, lo) + "…";
  }

  function layout(ctx, spec) {
    var rowFont = Math.max(7, Math.min(12, spec.rowH - 2));
    font(ctx, rowFont);
    var widest = 0;
    spec.keys.forEach(function (k) { widest = Math.max(widest, ctx.measureText(k).width); });
    var labelW = Math.min(MAX_LABEL, Math.ceil(widest) + 8);
    var left = PAD + 22 + labelW;               // axis title, then keys
    var top = PAD + 52;                          // title and subtitle
    var width = Math.max(left + spec.image.width + PAD, PAD * 2 + 640);
    var height = top + spec.height + 44 + LEGEND_H;   // numbers, axis title, legend
    return { rowFont: rowFont, labelW: labelW, left: left, top: top, width: width, height: height };
  }

  function drawTitles(ctx, spec, box) {
    ctx.fillStyle = INK; ctx.textBaseline = "alphabetic"; ctx.textAlign = "left";
    font(ctx, 18, "600");
    ctx.fillText(spec.title, PAD, PAD + 14);
    ctx.fillStyle = MUTED; font(ctx, 12);
    ctx.fillText(spec.subtitle, PAD, PAD + 34);
    // The rows' axis title, turned to run up beside the keys.
    ctx.save();
    ctx.translate(PAD + 10, box.top + spec.height / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center"; ctx.fillStyle = INK; font(ctx, 12, "600");
    ctx.fillText(spec.rowsTitle, 0, 0);
    ctx.restore();
  }

  function drawRows(ctx, spec, box) {
    ctx.fillStyle = INK; ctx.textAlign = "right"; ctx.textBaseline = "middle";
    font(ctx, box.rowFont);
    spec.keys.forEach(function (key, p) {
      ctx.fillText(fit(ctx, key, box.labelW - 8), box.left - 6, box.top + p * spec.rowH + spec.rowH / 2);
    });
  }

  function drawColumns(ctx, spec, box) {
    var y = box.top + spec.height;
    ctx.strokeStyle = LINE; ctx.fillStyle = INK; ctx.textAlign = "center"; ctx.textBaseline = "top";
    font(ctx, 11);
    // The columns the page labels (spec.labelled), so the figure's numbers are the page's.
    spec.labelled.forEach(function (c) {
      var x = box.left + c * spec.cellW + spec.cellW / 2;
      ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x, y + 4); ctx.stroke();
      ctx.fillText(String(spec.numbers[c]), x, y + 6);
    });
    font(ctx, 12, "600");
    ctx.fillText(spec.colsTitle, box.left + spec.image.width / 2, y + 24);
  }

  function swatch(ctx, kind, x, y) {
    var s = 14;
    if (kind === "failed") {
      ctx.save();
      ctx.beginPath(); ctx.rect(x, y, s, s); ctx.clip();
      ctx.fillStyle = "#cdd2da"; ctx.fillRect(x, y, s, s);
      ctx.strokeStyle = "#8a919e";
      for (var k = -s; k < s; k += 4) { ctx.beginPath(); ctx.moveTo(x + k, y + s); ctx.lineTo(x + k + s, y); ctx.stroke(); }
      ctx.restore();
    } else if (kind === "unaffected") {
      // White with dots, as heatmap.js draws these cells.
      ctx.fillStyle = "#ffffff"; ctx.fillRect(x, y, s, s);
      ctx.fillStyle = "#8b7a55";
      for (var dy = 0; dy < s; dy += 2) for (var dx = 0; dx < s; dx += 3) ctx.fillRect(x + dx, y + dy, 1, 1);
    } else if (kind === "harm") {
      var g = ctx.createLinearGradient(x, 0, x + s, 0);
      g.addColorStop(0, "#dbeafe"); g.addColorStop(1, "#1d4ed8");
      ctx.fillStyle = g; ctx.fillRect(x, y, s, s);
    } else {
      ctx.fillStyle = kind === "missing" ? "#eef0f4" : kind === "not_in_run" ? "#cfd4dc" : "#ffffff";
      ctx.fillRect(x, y, s, s);
    }
    ctx.strokeStyle = LINE; ctx.strokeRect(x + 0.5, y + 0.5, s - 1, s - 1);
  }

  function drawLegend(ctx, spec, box) {
    var y = box.height - LEGEND_H + 8, x = PAD;
    ctx.textAlign = "left"; ctx.textBaseline = "top"; ctx.fillStyle = INK; font(ctx, 12);
    ctx.fillText(spec.scaleTitle, x, y);
    var ramp = ctx.createLinearGradient(x, 0, x + RAMP_W, 0);
    spec.heatStops.forEach(function (stop) { ramp.addColorStop(stop[0], stop[1]); });
    ctx.fillStyle = ramp; ctx.fillRect(x, y + 18, RAMP_W, 12);
    ctx.strokeStyle = LINE; ctx.strokeRect(x + 0.5, y + 18.5, RAMP_W - 1, 11);
    ctx.fillStyle = MUTED; font(ctx, 11);
    spec.ticks.forEach(function (t, k) {
      ctx.textAlign = k === 0 ? "left" : k === spec.ticks.length - 1 ? "right" : "center";
      ctx.fillText(t, x + RAMP_W * k / (spec.ticks.length - 1), y + 33);
    });
    ctx.textAlign = "left"; ctx.textBaseline = "middle"; font(ctx, 12);
    var sx = x + RAMP_W + 28, sy = y + 24;
    spec.legend.forEach(function (item) {
      var w = ctx.measureText(item.text).width + 34;
      if (sx + w > box.width - PAD) { sx = x + RAMP_W + 28; sy += 22; }
      swatch(ctx, item.swatch, sx, sy - 7);
      ctx.fillStyle = INK; ctx.fillText(item.text, sx + 20, sy);
      sx += w;
    });
  }

  window.memscoreHeatmapFigure = function (spec) {
    var figure = document.createElement("canvas");
    var ctx = figure.getContext("2d");
    var box = layout(ctx, spec);
    // Browsers refuse canvases much past 16,000 px a side: shrink the whole figure to fit.
    var scale = Math.min(1, MAX_SIDE / box.width, MAX_SIDE / box.height);
    figure.width = Math.ceil(box.width * scale);
    figure.height = Math.ceil(box.height * scale);
    ctx.scale(scale, scale);
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, box.width, box.height);
    ctx.imageSmoothingEnabled = false;
    // The cells as on screen: rows stretched to spec.rowH, pixels kept sharp.
    ctx.drawImage(spec.image, box.left, box.top, spec.image.width, spec.height);
    ctx.strokeStyle = LINE; ctx.strokeRect(box.left - 0.5, box.top - 0.5, spec.image.width + 1, spec.height + 1);
    drawTitles(ctx, spec, box);
    drawRows(ctx, spec, box);
    drawColumns(ctx, spec, box);
    drawLegend(ctx, spec, box);
    return figure;
  };
})();
