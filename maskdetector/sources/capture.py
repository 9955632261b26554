"""Frame sources: a camera index, a video file or an RTSP/HTTP stream, all read through OpenCV.

A source either hands out BGR frames or raises SourceError with a reason a person can read, so the
streaming layer can show that reason and retry instead of hanging.
"""

import logging
import socket
import ssl
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from maskdetector.errors import UserError

log = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp", "http", "https")
# Files whose container reports no usable frame rate are played at this rate.
FALLBACK_FILE_FPS = 25.0
# A network stream that stalls must fail (and be retried) rather than block the reading thread for good.
STREAM_TIMEOUT_MS = 10_000
# How long a stream's server may take to answer the probe before the open is given up (and retried with back-off).
PROBE_TIMEOUT_S = 2.0
DEFAULT_PORTS = {"rtsp": 554, "http": 80, "https": 443}

SourceSpec = int | str  # camera index, video file path or stream URL


class SourceError(Exception):
    """The source cannot be opened or stopped giving frames; the message says why."""


class SourceEnded(SourceError):
    """A video file without looping reached its end; retrying would only replay it."""


class FrameSource(Protocol):
    """Anything that hands out BGR frames; `read` blocks until the next frame is due."""

    def read(self) -> np.ndarray: ...

    def release(self) -> None: ...


def is_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme.lower() in URL_SCHEMES and bool(parts.netloc)


def parse_source(text: str | int) -> SourceSpec:
    """Turn a --source value into a camera index, an existing file path or a stream URL; else UserError."""
    value = str(text).strip()
    if value.isdigit():
        return int(value)
    if is_url(value):
        return value
    if Path(value).is_file():
        return value
    raise UserError(f"source {value!r} is not a camera index, an existing video file or an {'/'.join(URL_SCHEMES)} URL")


def describe_source(spec: SourceSpec) -> str:
    """A name to show people: 'camera 0', the file name, or the URL as scheme://host[:port]/path: no user name,
    password, query or fragment (cameras take tokens in the query as often as passwords in the URL)."""
    if isinstance(spec, int):
        return f"camera {spec}"
    if is_url(spec):
        parts = urlsplit(spec)
        host = parts.hostname or "?"
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:  # a port that is not a number: is_url accepted it, OpenCV will refuse it
            port = ""
        return urlunsplit((parts.scheme.lower(), host + port, parts.path, "", ""))
    return Path(spec).name


def probe_stream(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """SourceError unless the server of `url` accepts a connection and answers a request within `timeout_s`.

    OpenCV opens every FFmpeg capture under one process-wide lock, so a server that accepts and never answers
    would hold up the opening of every other file and stream for the whole open timeout; this is asked first,
    from Python, without that lock. Any reply counts (a 401 too: FFmpeg will log in)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    shown = describe_source(url)
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise SourceError(f"{shown}: the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise SourceError(f"{shown} names no host")
    target = urlunsplit((scheme, parts.netloc.rpartition("@")[2], parts.path or "/", parts.query, ""))
    if scheme == "rtsp":
        request = f"OPTIONS {target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: maskdetector\r\n\r\n"
    else:
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        request = f"GET {path} HTTP/1.0\r\nHost: {parts.hostname}\r\nUser-Agent: maskdetector\r\n\r\n"
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s) as raw:
            conn = ssl_context().wrap_socket(raw, server_hostname=parts.hostname) if scheme == "https" else raw
            conn.sendall(request.encode("utf-8"))
            if not conn.recv(1):
                raise SourceError(f"{shown} closed the connection without answering")
    except TimeoutError:
        raise SourceError(f"{shown} does not answer (nothing within {timeout_s:g}s)") from None
    except OSError as exc:
        raise SourceError(f"cannot reach {shown}: {exc.strerror or exc}") from None


def ssl_context() -> ssl.SSLContext:
    """For the probe only: whether anyone answers, not who (FFmpeg checks the stream itself)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class VideoSource:
    """cv2.VideoCapture over any SourceSpec.

    Files are paced to their own frame rate (cameras and streams pace themselves by blocking in read),
    so a file plays at real speed and the reading thread never spins.
    """

    def __init__(self, spec: SourceSpec, mirror: bool = False, loop: bool = False) -> None:
        self.name = describe_source(spec)
        self._mirror = mirror
        self._loop = loop
        is_stream = isinstance(spec, str) and is_url(spec)
        self._is_file = isinstance(spec, str) and not is_stream
        if is_stream:
            probe_stream(spec)
            timeout = STREAM_TIMEOUT_MS
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout]
            self._cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, params)
        else:
            self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open {self.name}")
        fps = self._cap.get(cv2.CAP_PROP_FPS) if self._is_file else 0.0
        self._interval = 1.0 / (fps if 0 < fps <= 240 else FALLBACK_FILE_FPS)
        self._next_due: float | None = None
        log.info("opened %s", self.name)

    def read(self) -> np.ndarray:
        ok, frame = self._grab()
        if not ok and self._is_file and self._loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._grab()
        if not ok:
            if self._is_file:
                raise SourceEnded(f"{self.name} has ended")
            raise SourceError(f"{self.name} stopped giving frames")
        if self._is_file:
            self._pace()
        return cv2.flip(frame, 1) if self._mirror else frame

    def release(self) -> None:
        self._cap.release()
        log.info("released %s", self.name)

    def _grab(self) -> tuple[bool, np.ndarray | None]:
        try:
            ok, frame = self._cap.read()
        except cv2.error as exc:
            raise SourceError(f"{self.name}: {exc}") from None
        return ok and frame is not None and frame.size > 0, frame

    def _pace(self) -> None:
        """Sleep until this frame is due; after a stall, restart the clock instead of racing to catch up."""
        now = time.monotonic()
        if self._next_due is None or now - self._next_due > self._interval:
            self._next_due = now
        elif self._next_due > now:
            time.sleep(self._next_due - now)
        self._next_due += self._interval
