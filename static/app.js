// Polls the stats endpoint and fills in, for every camera card and the total, each element with a data-stat
// attribute ("people.compliance" looks up a nested value; data-format="percent" shows a 0-1 ratio as a percentage).
// The streams themselves are plain <img>s; this script only adds live numbers and reconnects a dropped stream.
(function () {
  "use strict";
  var statsUrl = document.currentScript.dataset.statsUrl;
  var POLL_MS = 1000;

  function lookup(stats, path) {
    return path.split(".").reduce(function (value, key) { return value == null ? undefined : value[key]; }, stats);
  }

  function format(value, kind) {
    if (kind === "percent") return value === null ? "–" : Math.round(value * 100) + "%";
    return value;
  }

  function fill(box, stats) {
    box.querySelectorAll("[data-stat]").forEach(function (el) {
      var value = lookup(stats, el.dataset.stat);
      if (value !== undefined) el.textContent = format(value, el.dataset.format);
    });
  }

  function show(stats) {
    document.querySelectorAll(".camera[data-source]").forEach(function (card) {
      var own = stats.sources[card.dataset.source];
      if (!own) return;
      fill(card, own);
      card.querySelector(".camera-status").hidden = own.camera === "ok";
    });
    var total = document.getElementById("total");
    if (total) fill(total, stats.total);
  }

  function poll() {
    fetch(statsUrl, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(show)
      .catch(function () { /* server restarting: keep the last numbers, try again */ })
      .finally(function () { setTimeout(poll, POLL_MS); });
  }

  // If the server restarts, an <img> stream ends; fetch it again after a pause.
  document.querySelectorAll("img.stream").forEach(function (stream) {
    stream.addEventListener("error", function () {
      setTimeout(function () {
        stream.src = stream.src.split("?")[0] + "?t=" + Date.now();
      }, 2000);
    });
  });

  poll();
})();
