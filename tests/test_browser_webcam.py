"""Browser-camera mode in headless Chromium with a fake camera that shows a real face: boxes get drawn."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import FakeCamera, serve
from test_browser import CHROMIUM_ARGS, chromium_path  # noqa: F401  (chromium_path is a fixture)

from maskdetector.vision.preprocessing import read_image
from maskdetector.web.app import create_app

sync_api = pytest.importorskip("playwright.sync_api")

PHOTO = "maksssksksss128"  # one large frontal face the default Haar cascade finds
WIDTH, HEIGHT, FRAMES = 640, 480, 10


def write_y4m(path: Path, frame_bgr: np.ndarray) -> None:
    """A few identical frames in the uncompressed format Chromium's fake capture device reads."""
    planes = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for _ in range(FRAMES):
            out.write(b"FRAME\n" + planes)


def face_frame(shared_datasets: Path) -> np.ndarray:
    photo = read_image(shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png")
    scale = HEIGHT / photo.shape[0]
    resized = cv2.resize(photo, (int(photo.shape[1] * scale), HEIGHT))
    frame = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    left = (WIDTH - resized.shape[1]) // 2
    frame[:, left : left + resized.shape[1]] = resized
    return frame


def test_device_camera_frames_get_boxes(untrained_model, chromium_path, shared_datasets, tmp_path):  # noqa: F811
    y4m = tmp_path / "face.y4m"
    write_y4m(y4m, face_frame(shared_datasets))
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]
    camera = FakeCamera(fps=5)
    app = create_app({"MODEL": str(untrained_model), "SOURCE": "fake camera", "SOURCE_FACTORY": camera})
    with serve(app) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=args)
        try:
            page = browser.new_page()
            page.goto(url + "/", wait_until="domcontentloaded")
            assert "only on localhost or over HTTPS" in page.text_content("#webcam")
            page.click("#webcam-button")
            try:
                page.wait_for_function(
                    "Number(document.querySelector('#webcam-overlay').dataset.faces) > 0", timeout=30_000
                )
            except sync_api.TimeoutError:  # say where it stuck: no camera, a paused video, failing requests
                state = page.evaluate(
                    "() => ({status: document.querySelector('#webcam-status').textContent,"
                    " video: [document.querySelector('#webcam-video').videoWidth,"
                    " document.querySelector('#webcam-video').paused],"
                    " faces: document.querySelector('#webcam-overlay').dataset.faces})"
                )
                pytest.fail(f"no face boxes within 30 s: {state}")
            assert page.eval_on_selector("#webcam-overlay", "c => [c.width, c.height]") == [WIDTH, HEIGHT]
            painted = page.eval_on_selector(
                "#webcam-overlay",
                "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
                ".filter((v, i) => i % 4 === 3 && v > 0).length",
            )
            assert painted > 0  # box and caption pixels on the otherwise transparent overlay
            assert float(page.text_content("#webcam-fps")) > 0
            assert page.is_hidden("#webcam-status")
            # The server's MJPEG <img> is still there, untouched by browser-camera mode.
            assert page.get_attribute("#stream", "src") == "/video_feed"
        finally:
            browser.close()
