"""Frame sources: parsing --source, reading a generated video file, looping, mirroring, clear failures."""

import cv2
import numpy as np
import pytest

from maskdetector.errors import UserError
from maskdetector.sources.capture import SourceEnded, SourceError, VideoSource, describe_source, parse_source

N_FRAMES = 4


@pytest.fixture
def video_file(tmp_path):
    """A tiny MJPG clip at 100 fps whose frames are white on the left half, brighter each frame."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 100, (64, 48))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        frame = np.full((48, 64, 3), 20 * i, np.uint8)
        frame[:, :32] = 255
        writer.write(frame)
    writer.release()
    return path


def test_parse_source_accepts_index_file_and_urls(video_file):
    assert parse_source("0") == 0
    assert parse_source(" 2 ") == 2
    assert parse_source(str(video_file)) == str(video_file)
    for url in ("rtsp://cam.local:554/stream", "http://host/video.mjpg", "https://host/live"):
        assert parse_source(url) == url


@pytest.mark.parametrize("bad", ["missing.mp4", "ftp://host/video", "camera", "-1", "http://"])
def test_parse_source_rejects_everything_else(bad):
    with pytest.raises(UserError, match="not a camera index"):
        parse_source(bad)


def test_describe_source_shows_scheme_host_port_and_path_only():
    assert describe_source(0) == "camera 0"
    assert describe_source("/videos/clip.mp4") == "clip.mp4"
    assert describe_source("rtsp://admin:secret@10.0.0.5:554/live") == "rtsp://10.0.0.5:554/live"
    assert describe_source("http://user:pw@host/stream?token=SECRET#x") == "http://host/stream"
    assert describe_source("HTTP://[::1]:8080/a?b") == "http://[::1]:8080/a"


def test_video_file_plays_then_ends(video_file):
    source = VideoSource(str(video_file))
    try:
        frames = [source.read() for _ in range(N_FRAMES)]
        assert all(f.shape == (48, 64, 3) for f in frames)
        with pytest.raises(SourceEnded, match="clip.avi has ended"):
            source.read()
    finally:
        source.release()


def test_video_file_loops(video_file):
    source = VideoSource(str(video_file), loop=True)
    try:
        frames = [source.read() for _ in range(2 * N_FRAMES + 1)]
        assert len(frames) == 2 * N_FRAMES + 1
    finally:
        source.release()


def test_mirror_flips_horizontally(video_file):
    plain, mirrored = VideoSource(str(video_file)), VideoSource(str(video_file), mirror=True)
    try:
        a, b = plain.read(), mirrored.read()
    finally:
        plain.release()
        mirrored.release()
    assert a[:, :16].mean() > 200 and b[:, -16:].mean() > 200
    assert b[:, :16].mean() < 100


def test_unopenable_source_raises_source_error(tmp_path):
    not_video = tmp_path / "notes.txt"
    not_video.write_text("not a video")
    with pytest.raises(SourceError, match="cannot open notes.txt"):
        VideoSource(str(not_video))


def test_unreachable_stream_raises_source_error():
    with pytest.raises(SourceError, match="cannot reach rtsp://127.0.0.1:1/live: Connection refused"):
        VideoSource("rtsp://127.0.0.1:1/live")  # nothing listens on port 1: refused at once
