"""An image uploaded to the API (multipart file, raw body or base64 in JSON) -> a BGR frame, or a clear 4xx.

Only JPEG and PNG are accepted: their headers give the pixel size before anything is decoded, so a small
file that would decode to a huge image is refused without allocating it. Every problem is raised as a
werkzeug HTTPException whose description is one line for the client; the web layer answers it as JSON.
"""

import base64
import binascii

import cv2
import numpy as np
from flask import Request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

RAW_TYPES = ("image/jpeg", "image/png")
MULTIPART_FIELD = "image"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# Start-of-frame markers carry the size; C4 (Huffman tables), C8 (reserved) and CC (arithmetic tables) do not.
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])
JPEG_SOS = 0xDA


def upload_bytes(request: Request) -> bytes:
    """The image bytes of a request, whichever of the three accepted forms it uses."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get(MULTIPART_FIELD)
        if upload is None:
            raise BadRequest(f"the multipart body has no file field {MULTIPART_FIELD!r}")
        return upload.read()
    if request.mimetype in RAW_TYPES:
        return request.get_data(cache=False)
    if request.mimetype == "application/json":
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("image"), str):
            raise BadRequest('expected a JSON object {"image": "<base64 or data: URL>"}')
        return decode_base64(payload["image"])
    raise UnsupportedMediaType(
        f"unsupported content type {request.mimetype or '(none)'}: send multipart/form-data with a file field "
        f"{MULTIPART_FIELD!r}, an {' or '.join(RAW_TYPES)} body, or application/json"
    )


def decode_base64(text: str) -> bytes:
    """Plain base64 or a data: URL (`data:image/png;base64,...`); whitespace and line breaks are ignored."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise BadRequest("the data: URL is not base64-encoded")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("the image is not valid base64") from None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments up to the first start-of-frame; None if the header is cut short or broken."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
        elif marker in JPEG_STANDALONE_MARKERS:
            i += 2
        elif marker == JPEG_SOS:  # image data before any frame header
            return None
        elif marker in JPEG_SOF_MARKERS:
            if i + 9 > len(data):
                return None
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """JPEG or PNG bytes -> BGR uint8 image; the pixel limit is checked on the header, before decoding."""
    if not data:
        raise BadRequest("no image: the upload is empty")
    if data.startswith(PNG_SIGNATURE):
        size = _png_size(data)
    elif data.startswith(JPEG_SIGNATURE):
        size = _jpeg_size(data)
    else:
        raise BadRequest("not a JPEG or PNG image")
    if size is not None and size[0] * size[1] > max_pixels:
        width, height = size
        raise RequestEntityTooLarge(f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels")
    try:
        image = None if size is None else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise BadRequest("the image is damaged or truncated and cannot be decoded")
    return image
