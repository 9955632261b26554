"""POST /api/detect on real photos: the three input forms, every kind of bad input, and concurrent use beside
the live stream."""

import base64
import http.client
import io
import json
import threading
import time
import zlib
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from helpers import FakeCamera, read_part, serve, wait_until

from maskdetector.vision.preprocessing import read_image
from maskdetector.web.app import create_app
from maskdetector.web.state import get_state

# A large, frontal, unmasked face the default Haar cascade finds (see test_detection.py).
PHOTO = "maksssksksss128"
MAX_PIXELS = 2_000_000
FACE_KEYS = {"box", "label", "confidence"}


def scene_frame(shared_datasets, size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """The photo scaled into the top-left of a larger dark frame, so boxes must be in the frame's coordinates."""
    photo = read_image(shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png")
    frame = np.full((*size, 3), 30, np.uint8)
    scale = min(size[0] / photo.shape[0], size[1] / photo.shape[1])
    resized = cv2.resize(photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)))
    frame[: resized.shape[0], : resized.shape[1]] = resized
    return frame


def encode(image: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def camera():
    return FakeCamera(fps=30)


@pytest.fixture(scope="module")
def app(untrained_model, camera):
    app = create_app(
        {
            "MODEL": str(untrained_model),
            "SOURCE": "fake camera",
            "SOURCE_FACTORY": camera,
            "MAX_UPLOAD_MB": 1.0,
            "MAX_IMAGE_PIXELS": MAX_PIXELS,
        }
    )
    yield app
    get_state(app).hub.close()


@pytest.fixture
def jpeg(shared_datasets) -> bytes:
    return encode(scene_frame(shared_datasets))


def assert_detection(body: dict, width: int = 640, height: int = 480) -> None:
    assert set(body) == {"width", "height", "faces", "ms"}
    assert (body["width"], body["height"]) == (width, height)
    assert isinstance(body["ms"], float) and body["ms"] >= 0
    assert body["faces"], "the photo's face was not found"
    for face in body["faces"]:
        assert set(face) == FACE_KEYS
        x, y, w, h = face["box"]
        assert all(isinstance(v, int) for v in face["box"])
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height
        assert face["label"] in ("with_mask", "without_mask")
        assert 0.0 <= face["confidence"] <= 1.0


def test_raw_jpeg_and_png_bodies(app, shared_datasets, jpeg):
    client = app.test_client()
    from_jpeg = client.post("/api/detect", data=jpeg, content_type="image/jpeg")
    assert from_jpeg.status_code == 200, from_jpeg.get_json()
    assert_detection(from_jpeg.get_json())
    from_png = client.post("/api/detect", data=encode(scene_frame(shared_datasets), ".png"), content_type="image/png")
    assert from_png.status_code == 200
    assert_detection(from_png.get_json())


def test_multipart_upload(app, jpeg):
    response = app.test_client().post(
        "/api/detect", data={"image": (io.BytesIO(jpeg), "frame.jpg")}, content_type="multipart/form-data"
    )
    assert response.status_code == 200, response.get_json()
    assert_detection(response.get_json())


@pytest.mark.parametrize("data_url", [False, True])
def test_base64_json(app, jpeg, data_url):
    text = base64.b64encode(jpeg).decode()
    if data_url:
        text = "data:image/jpeg;base64," + text
    response = app.test_client().post("/api/detect", json={"image": text})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert_detection(body)
    raw = app.test_client().post("/api/detect", data=jpeg, content_type="image/jpeg").get_json()
    assert body["faces"] == raw["faces"]  # same bytes, same answer whichever way they came


def test_face_crop_embedded_in_a_larger_frame(app, shared_datasets):
    crop = read_image(sorted((shared_datasets / "observations" / "without_mask").glob("*.jpg"))[0])
    frame = np.zeros((crop.shape[0] + 200, crop.shape[1] + 300, 3), np.uint8)
    frame[120 : 120 + crop.shape[0], 200 : 200 + crop.shape[1]] = crop
    body = app.test_client().post("/api/detect", data=encode(frame), content_type="image/jpeg").get_json()
    assert (body["width"], body["height"]) == (frame.shape[1], frame.shape[0])
    for face in body["faces"]:  # Haar may or may not find this crop; whatever it finds lies inside the frame
        x, y, w, h = face["box"]
        assert x >= 0 and y >= 0 and x + w <= body["width"] and y + h <= body["height"]


def _chunk(kind: bytes, data: bytes = b"") -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def png_header(width: int, height: int) -> bytes:
    """A valid PNG of 65 bytes claiming `width` x `height` pixels, with no pixel data behind the claim."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND")


BAD_INPUTS = {
    "empty body": ({"data": b"", "content_type": "image/jpeg"}, 400, "empty"),
    "not an image": ({"data": b"hello, world", "content_type": "image/jpeg"}, 400, "not a JPEG or PNG"),
    "truncated jpeg": ("truncated", 400, "truncated"),
    "base64 garbage": ({"json": {"image": "%%% not base64 %%%"}}, 400, "base64"),
    "json without image": ({"json": {"picture": "abc"}}, 400, "image"),
    "broken json": ({"data": b"{not json", "content_type": "application/json"}, 400, "image"),
    "multipart without field": ({"data": {"other": "x"}, "content_type": "multipart/form-data"}, 400, "'image'"),
    "wrong content type": ({"data": b"hello", "content_type": "text/plain"}, 415, "text/plain"),
    "no content type": ({"data": b"\xff\xd8\xff"}, 415, "content type"),
    "too many pixels (header)": ({"data": png_header(5000, 5000), "content_type": "image/png"}, 413, "5000x5000"),
    "too large body": ({"data": b"\xff" * (1024 * 1024 + 1), "content_type": "image/jpeg"}, 413, ""),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_a_4xx_json_error(app, jpeg, case):
    request, status, fragment = BAD_INPUTS[case]
    if request == "truncated":
        request = {"data": jpeg[: len(jpeg) // 2], "content_type": "image/jpeg"}
    response = app.test_client().post("/api/detect", **request)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert isinstance(error, str) and error and fragment in error


def test_too_many_pixels_in_a_real_image(app):
    blank = encode(np.zeros((1500, 1500, 3), np.uint8), ".png")  # 2.25 MP, compresses to a few kB
    response = app.test_client().post("/api/detect", data=blank, content_type="image/png")
    assert response.status_code == 413 and "1500x1500" in response.get_json()["error"]


def test_other_api_errors_are_json_and_the_page_is_not(app):
    client = app.test_client()
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and "error" in missing.get_json()
    wrong_method = client.get("/api/detect")
    assert wrong_method.status_code == 405 and "error" in wrong_method.get_json()
    assert not client.get("/no-such-page").is_json


def test_api_does_not_start_the_stream(untrained_model, jpeg):
    camera = FakeCamera()
    app = create_app({"MODEL": str(untrained_model), "SOURCE": "fake camera", "SOURCE_FACTORY": camera})
    try:
        assert app.test_client().post("/api/detect", data=jpeg, content_type="image/jpeg").status_code == 200
        assert camera.opens == 0
        assert get_state(app).hub.stats()["capturing"] is False
    finally:
        get_state(app).hub.close()


def test_concurrent_requests_while_the_stream_plays(app, jpeg):
    with serve(app) as url:
        address = urlsplit(url)
        stream_frames = 0
        stop = threading.Event()
        errors: list[BaseException] = []

        def watch() -> None:
            nonlocal stream_frames
            conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
            try:
                conn.request("GET", "/video_feed")
                response = conn.getresponse()
                while not stop.is_set():
                    assert read_part(response).startswith(b"\xff\xd8")
                    stream_frames += 1
            except Exception as exc:
                errors.append(exc)
            finally:
                conn.close()

        watcher = threading.Thread(target=watch)
        watcher.start()
        wait_until(lambda: stream_frames > 0 or errors, what="the stream's first frame")
        frames_before = stream_frames
        bodies: list[dict] = []
        lock = threading.Lock()

        def post() -> None:
            # Keep posting until the stream has visibly moved on, at least twice per thread.
            sent = 0
            while sent < 2 or (stream_frames < frames_before + 3 and not errors):
                conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
                try:
                    conn.request("POST", "/api/detect", body=jpeg, headers={"Content-Type": "image/jpeg"})
                    response = conn.getresponse()
                    body = json.loads(response.read())
                    if response.status == 503:  # the upload line is full: come back when it says
                        assert int(response.headers["Retry-After"]) > 0, body
                        time.sleep(0.2)
                        continue
                    assert response.status == 200, body
                    with lock:
                        bodies.append(body)
                except Exception as exc:
                    errors.append(exc)
                    return
                finally:
                    conn.close()
                sent += 1

        posters = [threading.Thread(target=post) for _ in range(8)]
        for t in posters:
            t.start()
        for t in posters:
            t.join(120)
        stop.set()
        watcher.join(30)
        assert not errors, errors
        assert len(bodies) >= 16
        for body in bodies:
            assert_detection(body)
            assert body["faces"] == bodies[0]["faces"]
        assert stream_frames >= frames_before + 3
