// No-mask alerts on the page: polls the alerts endpoint, lists the latest alerts with their snapshots, and shows a
// banner (plus an optional beep made with WebAudio, so no sound file is needed) for each new one.
(function () {
  "use strict";
  var alertsUrl = document.currentScript.dataset.alertsUrl;
  var POLL_MS = 2000;
  var BANNER_MS = 60000; // the banner hides itself after this long
  var FRESH_MS = 60000; // on page load, an alert younger than this is still announced

  var banner = document.getElementById("alert-banner");
  var bannerText = document.getElementById("alert-text");
  var list = document.getElementById("alert-list");
  var sound = document.getElementById("alert-sound");
  var lastId = null;
  var audio = null;
  var hideTimer = null;

  function when(alert) {
    return new Date(alert.time).toLocaleTimeString();
  }

  // Browsers allow audio only after a user gesture: the click on the checkbox is one.
  sound.addEventListener("change", function () {
    if (!sound.checked) return;
    audio = audio || new AudioContext();
    audio.resume();
  });

  function beep() {
    if (!sound.checked || !audio) return;
    var start = audio.currentTime;
    var tone = audio.createOscillator();
    var volume = audio.createGain();
    tone.frequency.value = 880;
    volume.gain.setValueAtTime(0.2, start);
    volume.gain.exponentialRampToValueAtTime(0.001, start + 0.6);
    tone.connect(volume).connect(audio.destination);
    tone.start(start);
    tone.stop(start + 0.6);
  }

  function hide() {
    banner.hidden = true;
  }

  function announce(alert) {
    bannerText.textContent = "No mask at " + alert.source + ", " + when(alert);
    banner.dataset.alertId = alert.id;
    banner.hidden = false;
    beep();
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, BANNER_MS);
  }

  function item(alert) {
    var li = document.createElement("li");
    li.append(when(alert) + " · " + alert.source + " · no mask " + Math.round(alert.confidence * 100) + "%");
    if (alert.snapshot) {  // admins only: a viewer's alerts come without the picture
      var link = document.createElement("a");
      link.href = alert.snapshot;
      link.target = "_blank";
      link.textContent = "snapshot";
      li.append(" · ", link);
    }
    return li;
  }

  function show(alerts) {
    if (alerts.length) list.replaceChildren.apply(list, alerts.map(item));
    var newest = alerts[0];
    if (newest && (lastId === null ? Date.now() - Date.parse(newest.time) < FRESH_MS : newest.id > lastId)) {
      announce(newest);
    }
    lastId = newest ? newest.id : 0;
  }

  function poll() {
    fetch(alertsUrl + "?limit=10", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (body) { show(body.alerts); })
      .catch(function () { /* server restarting: try again */ })
      .finally(function () { setTimeout(poll, POLL_MS); });
  }

  document.getElementById("alert-dismiss").addEventListener("click", hide);
  poll();
})();
