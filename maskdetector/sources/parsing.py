"""Named sources for several cameras: `--source entrance=0 --source hall=rtsp://...` or a `--sources-file`.

Each source gets a short URL-safe name (for `/video_feed/<name>` and the statistics rows) next to the
description people see. A plain `--source 0` still works and is named after what it is (`camera0`).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from maskdetector.errors import UserError
from maskdetector.sources.capture import SourceSpec, describe_source, is_url, parse_source

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}"
_NAMED = re.compile(rf"({NAME_PATTERN})=(.+)")
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class NamedSource:
    name: str  # URL-safe: /video_feed/<name>, the statistics' source column
    label: str  # what the page shows: 'camera 0', a file name, a URL with its password hidden
    spec: SourceSpec


def slug(text: str) -> str:
    """A URL-safe name made of `text` ('fake camera' -> 'fake-camera'), for sources given without a name."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:40] or "source"


def _default_name(spec: SourceSpec) -> str:
    if isinstance(spec, int):
        return f"camera{spec}"
    return slug((urlsplit(spec).hostname or "stream") if is_url(spec) else Path(spec).stem)


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def parse_named_sources(values: Sequence[str]) -> list[NamedSource]:
    """`NAME=SOURCE` or plain `SOURCE` values, in order; UserError for a bad source or a name used twice.

    A value that is an existing file is a plain source even if it contains '=' (a file named 'a=b.mp4').
    """
    explicit: list[tuple[str | None, str]] = []
    for value in values:
        match = _NAMED.fullmatch(value.strip())
        explicit.append((match[1], match[2]) if match and not Path(value).is_file() else (None, value))
    names = [name for name, _ in explicit if name]
    if len(set(names)) != len(names):
        raise UserError(f"source name {next(n for n in names if names.count(n) > 1)!r} is used twice")
    taken = set(names)
    sources = []
    for name, text in explicit:
        spec = parse_source(text)
        if name is None:
            name = _unique(_default_name(spec), taken)
            taken.add(name)
        sources.append(NamedSource(name, describe_source(spec), spec))
    return sources


def read_sources_file(path: str | Path) -> list[str]:
    """`name source` lines (blank lines and `#` comments skipped) as `name=source` values; UserError if malformed."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read sources file {path}: {exc}") from None
    values = []
    for number, line in enumerate(lines, 1):
        if not (line := line.strip()) or line.startswith("#"):
            continue
        name, _, source = line.partition(" ")
        if not source.strip() or not _NAME.fullmatch(name):
            raise UserError(f"{path}:{number}: expected 'name source' with a name of letters, digits, '-' or '_'")
        values.append(f"{name}={source.strip()}")
    if not values:
        raise UserError(f"sources file {path} lists no sources")
    return values


def sources_from_settings(settings: Mapping[str, object]) -> list[NamedSource]:
    """SOURCES_FILE if set, else SOURCE (one value, or a list when --source was given several times)."""
    if settings["SOURCES_FILE"]:
        return parse_named_sources(read_sources_file(str(settings["SOURCES_FILE"])))
    source = settings["SOURCE"]
    return parse_named_sources([str(v) for v in source] if isinstance(source, list | tuple) else [str(source)])
