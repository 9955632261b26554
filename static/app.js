// Polls the stats endpoint and fills in every element with a matching data-stat attribute.
// The stream itself is a plain <img>; this script only adds live numbers and reconnects a dropped stream.
(function () {
  "use strict";
  var statsUrl = document.currentScript.dataset.statsUrl;
  var statusBox = document.getElementById("camera-status");
  var stream = document.getElementById("stream");
  var POLL_MS = 1000;

  function show(stats) {
    document.querySelectorAll("[data-stat]").forEach(function (el) {
      var value = stats[el.dataset.stat];
      if (value !== undefined) el.textContent = value;
    });
    statusBox.hidden = stats.camera === "ok";
  }

  function poll() {
    fetch(statsUrl, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(show)
      .catch(function () { /* server restarting: keep the last numbers, try again */ })
      .finally(function () { setTimeout(poll, POLL_MS); });
  }

  // If the server restarts, the <img> stream ends; fetch it again after a pause.
  stream.addEventListener("error", function () {
    setTimeout(function () {
      stream.src = stream.src.split("?")[0] + "?t=" + Date.now();
    }, 2000);
  });

  poll();
})();
