"""An image uploaded to the API (multipart file, raw body or base64 in JSON) -> a BGR frame, or a clear 4xx.

Only JPEG and PNG are accepted. Pillow reads the header alone first, so an image whose pixel count, longest side
or aspect ratio is absurd (a 99-byte PNG that claims 1 x 1,000,000 pixels) is refused before anything is decoded
or allocated. Every problem is raised as a werkzeug HTTPException whose description is one line for the client;
the web layer answers it as JSON.
"""

import base64
import binascii
import io
import json
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from flask import Request
from PIL import Image, UnidentifiedImageError
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

RAW_TYPES = ("image/jpeg", "image/png")
MULTIPART_FIELD = "image"
FORMATS = ("JPEG", "PNG")


@dataclass(frozen=True)
class ImageLimits:
    """What an uploaded image may be, checked on its header: pixels in all, longest side, longest / shortest side."""

    pixels: int
    side: int
    aspect: float


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
        payload = parse_json(request.get_data(cache=False))
        if not isinstance(payload, dict) or not isinstance(payload.get("image"), str):
            raise BadRequest('expected a JSON object {"image": "<base64 or data: URL>"}')
        return decode_base64(payload["image"])
    raise UnsupportedMediaType(
        f"unsupported content type {request.mimetype or '(none)'}: send multipart/form-data with a file field "
        f"{MULTIPART_FIELD!r}, an {' or '.join(RAW_TYPES)} body, or application/json"
    )


def parse_json(body: bytes) -> object:
    """A JSON body, or 400: not UTF-8, not JSON, or nested too deeply for the parser (RecursionError)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest('the body is not valid JSON: expected {"image": "<base64 or data: URL>"}') from None


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


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG or PNG header, without decoding the pixels; 400 for anything else."""
    if not data:
        raise BadRequest("no image: the upload is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limits below are ours
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                return image.size
    except Image.DecompressionBombError:  # Pillow's own ceiling, far above ours: hundreds of millions of pixels
        raise RequestEntityTooLarge("the image header claims hundreds of millions of pixels") from None
    except UnidentifiedImageError:
        raise BadRequest("not a JPEG or PNG image") from None
    except (OSError, ValueError, SyntaxError):  # Pillow's words for a header cut short or broken
        raise BadRequest("the image is damaged or truncated and cannot be decoded") from None


def check_size(width: int, height: int, limits: ImageLimits) -> None:
    """413 for too many pixels or too long a side, 400 for an absurd aspect ratio."""
    if width * height > limits.pixels:
        raise RequestEntityTooLarge(f"the image is {width}x{height} pixels; the limit is {limits.pixels} pixels")
    if max(width, height) > limits.side:
        raise RequestEntityTooLarge(f"the image is {width}x{height} pixels; the longest side may be {limits.side}")
    if max(width, height) > limits.aspect * max(1, min(width, height)):
        raise BadRequest(
            f"the image is {width}x{height} pixels; one side may be at most {limits.aspect:g} times the other"
        )


def checked_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """The header's (width, height) once it is within `limits`; the 4xx otherwise. Cheap: nothing is decoded."""
    size = image_size(data)
    check_size(*size, limits)
    return size


def decode_image(data: bytes, limits: ImageLimits) -> np.ndarray:
    """JPEG or PNG bytes -> BGR uint8 image; the limits are checked on the header, before decoding."""
    width, height = checked_size(data, limits)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0 or image.shape[:2] != (height, width):
        raise BadRequest("the image is damaged or truncated and cannot be decoded")
    return image
