// Browser-camera mode: for a server without a camera, detect faces in the viewer's own camera.
// Frames are downscaled, sent as JPEG to the detect API with at most one request in flight (so a slow server
// lowers the rate instead of building a queue), and the returned boxes are drawn on a canvas over the video.
(function () {
  "use strict";
  var script = document.currentScript;
  var detectUrl = script.dataset.detectUrl;
  var classes = JSON.parse(script.dataset.classes);
  var SEND_WIDTH = 640; // larger frames cost upload time without helping a Haar detector much
  var JPEG_QUALITY = 0.8;
  var RETRY_MS = 1000;

  var button = document.getElementById("webcam-button");
  var status = document.getElementById("webcam-status");
  var view = document.getElementById("webcam-view");
  var video = document.getElementById("webcam-video");
  var overlay = document.getElementById("webcam-overlay");
  var statsLine = document.getElementById("webcam-stats");
  var fpsText = document.getElementById("webcam-fps");
  var facesText = document.getElementById("webcam-faces");
  var grab = document.createElement("canvas");
  var stream = null;
  var session = 0; // bumped by stop(): a reply from an earlier session must not restart its loop
  var fps = 0;

  function say(message) {
    status.textContent = message;
    status.hidden = !message;
  }

  function draw(result, scale) {
    var ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    ctx.lineWidth = Math.max(2, overlay.width / 320);
    ctx.font = Math.round(Math.max(14, overlay.width / 40)) + "px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    result.faces.forEach(function (face) {
      var x = face.box[0] * scale, y = face.box[1] * scale, w = face.box[2] * scale, h = face.box[3] * scale;
      var style = classes[face.label] || { name: face.label, colour: "#c8c8c8" };
      var text = style.name + " " + Math.round(face.confidence * 100) + "%";
      ctx.strokeStyle = ctx.fillStyle = style.colour;
      ctx.strokeRect(x, y, w, h);
      var textHeight = parseInt(ctx.font, 10) + 4;
      var top = y >= textHeight ? y : y + h + textHeight;
      ctx.fillRect(x, top - textHeight, ctx.measureText(text).width + 6, textHeight);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x + 3, top - 2);
    });
    overlay.dataset.faces = String(result.faces.length);
    facesText.textContent = result.faces.length;
  }

  function toJpeg(canvas) {
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (blob) { return blob ? resolve(blob) : reject(new Error("no frame")); },
        "image/jpeg", JPEG_QUALITY);
    });
  }

  // One round trip: grab, send, draw, then schedule the next; never two requests at once.
  function loop(id) {
    var next = function (ms) { setTimeout(function () { loop(id); }, ms); };
    if (id !== session) return;
    if (!video.videoWidth) { next(100); return; }
    var scale = Math.min(1, SEND_WIDTH / video.videoWidth);
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    var started = performance.now();
    toJpeg(grab)
      .then(function (blob) {
        return fetch(detectUrl, { method: "POST", headers: { "Content-Type": "image/jpeg" }, body: blob });
      })
      .then(function (r) {
        return r.json().then(function (body) { return r.ok ? body : Promise.reject(new Error(body.error)); });
      })
      .then(function (result) {
        if (id !== session) return;
        overlay.width = video.videoWidth;
        overlay.height = video.videoHeight;
        draw(result, 1 / scale);
        var rate = 1000 / Math.max(1, performance.now() - started);
        fps = fps ? 0.8 * fps + 0.2 * rate : rate;
        fpsText.textContent = fps.toFixed(1);
        say("");
        next(0);
      })
      .catch(function (err) {
        if (id !== session) return;
        say("Detection failed: " + (err && err.message ? err.message : err) + "; retrying");
        next(RETRY_MS);
      });
  }

  function start() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser gives pages access to the camera only on localhost or over HTTPS.");
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: true, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        view.hidden = statsLine.hidden = false;
        button.textContent = "Stop using this device's camera";
        say("");
        return video.play(); // `autoplay` alone leaves the video paused on its first frame in some browsers
      })
      .then(function () { loop(session); })
      .catch(function (err) { say("No camera: " + (err.message || err.name)); });
  }

  function stop() {
    stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    session += 1;
    video.srcObject = null;
    view.hidden = statsLine.hidden = true;
    button.textContent = "Use this device's camera";
  }

  button.addEventListener("click", function () { return stream ? stop() : start(); });
  button.hidden = false;
})();
