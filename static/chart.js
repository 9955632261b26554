// The statistics chart, drawn on a canvas without any library: people seen per time slot as bars stacked by label
// (mask colours as on the stream), and a line for the share wearing a mask (right axis, 0-100 %). Long periods are
// grouped into at most MAX_BARS slots. Reloads the history every REFRESH_MS and when a selector changes.
(function () {
  "use strict";
  var script = document.currentScript;
  var historyUrl = script.dataset.historyUrl;
  var classes = JSON.parse(script.dataset.classes);
  var LABELS = Object.keys(classes);
  var MAX_BARS = 60;
  var REFRESH_MS = 30000;
  var HEIGHT = 240;
  var PAD = { left: 36, right: 44, top: 12, bottom: 24 };
  var TEXT = "#e8e6e3", GRID = "#3a3d3f", LINE = "#4da3ff";

  var canvas = document.getElementById("history-chart");
  var minutesSelect = document.getElementById("history-minutes");
  var sourceSelect = document.getElementById("history-source");
  var scopeSelect = document.getElementById("history-scope"); // only when several instances share the database
  var summary = document.getElementById("history-summary");
  var report = null;
  var timer = null;

  function slots(series, start, minutes) {
    var perSlot = Math.ceil(minutes / MAX_BARS); // minutes per bar
    var out = [];
    for (var i = 0; i < Math.ceil(minutes / perSlot); i++) {
      out.push({ t: start + i * perSlot * 60, people: 0, counts: {} });
    }
    series.forEach(function (point) {
      var slot = out[Math.floor((point.t - start) / 60 / perSlot)];
      if (!slot) return;
      LABELS.forEach(function (label) { slot.counts[label] = (slot.counts[label] || 0) + (point[label] || 0); });
      slot.people += point.people;
    });
    return out;
  }

  function clock(seconds) {
    var date = new Date(seconds * 1000);
    return date.getHours() + ":" + String(date.getMinutes()).padStart(2, "0");
  }

  function draw() {
    var part = sourceSelect && sourceSelect.value ? report.sources[sourceSelect.value] : report.total;
    part = part || { totals: { people: 0, compliance: null }, series: [] };
    var bars = slots(part.series, report.start, report.minutes);
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 600;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(HEIGHT * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, HEIGHT);
    ctx.font = "11px system-ui, sans-serif";
    var plotW = width - PAD.left - PAD.right, plotH = HEIGHT - PAD.top - PAD.bottom;
    var most = Math.max(1, Math.max.apply(null, bars.map(function (b) { return b.people; })));
    var barW = plotW / bars.length;
    var y = function (people) { return PAD.top + plotH * (1 - people / most); };

    // Grid and axes: people on the left, the share with a mask on the right.
    ctx.strokeStyle = GRID;
    ctx.fillStyle = TEXT;
    ctx.textBaseline = "middle";
    [0, 0.5, 1].forEach(function (f) {
      var at = PAD.top + plotH * (1 - f);
      ctx.beginPath();
      ctx.moveTo(PAD.left, at);
      ctx.lineTo(PAD.left + plotW, at);
      ctx.stroke();
      ctx.textAlign = "right";
      ctx.fillText(String(+(most * f).toFixed(1)), PAD.left - 4, at);
      ctx.textAlign = "left";
      ctx.fillText(Math.round(f * 100) + "%", PAD.left + plotW + 4, at);
    });
    ctx.textBaseline = "top";
    [0, Math.floor(bars.length / 2), bars.length - 1].forEach(function (i, n) {
      ctx.textAlign = ["left", "center", "right"][n];
      ctx.fillText(clock(bars[i].t), PAD.left + barW * (i + [0, 0.5, 1][n]), PAD.top + plotH + 6);
    });

    // Bars, stacked by label.
    bars.forEach(function (bar, i) {
      var base = 0;
      LABELS.forEach(function (label) {
        var n = bar.counts[label] || 0;
        if (!n) return;
        ctx.fillStyle = classes[label].colour;
        ctx.fillRect(PAD.left + barW * i + barW * 0.1, y(base + n), barW * 0.8, y(base) - y(base + n));
        base += n;
      });
    });

    // The share with a mask, joined across slots that saw someone.
    ctx.strokeStyle = ctx.fillStyle = LINE;
    ctx.lineWidth = 2;
    ctx.beginPath();
    var started = false;
    bars.forEach(function (bar, i) {
      if (!bar.people) return;
      var px = PAD.left + barW * (i + 0.5);
      var py = PAD.top + plotH * (1 - (bar.counts.with_mask || 0) / bar.people);
      if (started) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      started = true;
      ctx.fillRect(px - 2, py - 2, 4, 4);
    });
    ctx.stroke();
    ctx.lineWidth = 1;

    var totals = part.totals;
    summary.textContent = totals.people + (totals.people === 1 ? " person" : " people") +
      (totals.compliance === null ? "" : ", " + Math.round(totals.compliance * 100) + "% with a mask");
    canvas.dataset.bars = String(bars.filter(function (b) { return b.people; }).length);
  }

  // The camera choices are the report's sources: this app's cameras, or every instance's ("north/door").
  function listSources() {
    var chosen = sourceSelect.value;
    var names = [""].concat(Object.keys(report.sources));
    if (names.indexOf(chosen) < 0) chosen = "";
    sourceSelect.replaceChildren.apply(sourceSelect, names.map(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = name || "all";
      return option;
    }));
    sourceSelect.value = chosen;
  }

  function load() {
    clearTimeout(timer);
    var scope = scopeSelect ? "&scope=" + scopeSelect.value : "";
    fetch(historyUrl + "?minutes=" + minutesSelect.value + scope, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (body) { report = body; if (sourceSelect) listSources(); draw(); })
      .catch(function () { /* server restarting: keep the last chart */ })
      .finally(function () { timer = setTimeout(load, REFRESH_MS); });
  }

  minutesSelect.addEventListener("change", load);
  if (scopeSelect) scopeSelect.addEventListener("change", load);
  if (sourceSelect) sourceSelect.addEventListener("change", function () { if (report) draw(); });
  window.addEventListener("resize", function () { if (report) draw(); });
  load();
})();
