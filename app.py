"""Serve live mask detection: `python app.py [--source 0|FILE|URL] ...`, then open http://127.0.0.1:5000.

Every flag has a MASKDETECTOR_<NAME> environment variable (e.g. MASKDETECTOR_SOURCE); a flag wins.
Bad input (source, model, busy port) ends with one `error: ...` line and exit code 2.
"""

import argparse
import errno
import logging
import os
import signal
import socket
import sys

from maskdetector.cli import (
    AppendOverDefault,
    OneLineParser,
    add_analyzer_options,
    set_settings_defaults,
    settings_from_args,
)
from maskdetector.errors import UserError
from maskdetector.settings import ENV_PREFIX, validate
from maskdetector.sources.parsing import sources_from_settings

log = logging.getLogger("maskdetector.app")


def parse_args(argv: list[str] | None, environ: dict[str, str]) -> dict[str, object]:
    """Command line over environment over defaults, as the settings dict create_app() takes."""
    parser = OneLineParser(
        description="Live face-mask detection in the browser.",
        epilog=f"Each option can also be set as an environment variable {ENV_PREFIX}<OPTION>, "
        f"e.g. {ENV_PREFIX}SOURCE=video.mp4; the command line wins.",
    )
    add = parser.add_argument
    add(
        "--source",
        action=AppendOverDefault,
        help="camera index, video file, or rtsp/http(s) stream URL, optionally named: NAME=SOURCE; "
        "repeat for several cameras (default %(default)s)",
    )
    add("--sources-file", help="file of `name source` lines, one camera each; replaces --source")
    add("--host", help="address to listen on (default %(default)s: this machine only)")
    add("--port", type=int, help="port to listen on (default %(default)s)")
    add_analyzer_options(parser)
    add("--mirror", action=argparse.BooleanOptionalAction, help="flip frames horizontally, for webcams")
    add("--loop", action=argparse.BooleanOptionalAction, help="replay a video file when it ends")
    add("--jpeg-quality", type=int, help="stream JPEG quality 1-100 (default %(default)s)")
    add(
        "--idle-timeout", type=float, help="seconds without viewers before the camera is released (default %(default)s)"
    )
    add("--max-upload-mb", type=float, help="largest POST /api/detect body, in MB (default %(default)s)")
    add("--max-image-pixels", type=int, help="largest image POST /api/detect decodes, in pixels (default %(default)s)")
    add("--data-dir", help="folder for the statistics database and the alerts log (default %(default)s)")
    add("--history", action=argparse.BooleanOptionalAction, help="keep per-minute counts of people (default on)")
    add(
        "--motion-gating",
        action=argparse.BooleanOptionalAction,
        help="skip analysing frames in which nothing moved since the last analysed one (default on)",
    )
    add(
        "--analysis-workers",
        type=int,
        metavar="N",
        help="threads analysing all cameras' frames; 0 = one per core (default %(default)s)",
    )
    add(
        "--always-on",
        action=argparse.BooleanOptionalAction,
        help="keep every source open and analysed with nobody watching, for statistics and alerts around the clock",
    )
    add("--alerts", action=argparse.BooleanOptionalAction, help="alert when a face without a mask stays in view")
    add("--alert-frames", type=int, help="frames in a row without a mask that raise an alert (default %(default)s)")
    add(
        "--alert-cooldown", type=float, help="seconds after an alert before a source alerts again (default %(default)s)"
    )
    add("--alert-webhook", help="POST each alert as JSON to this http(s) URL (implies --alerts)")
    add(
        "--database-url",
        help="where the per-minute counts go: sqlite:///FILE, or postgresql://user[:password]@host[:port]/db shared "
        "by the instances of a site (default: history.sqlite3 in --data-dir)",
    )
    add("--instance", help="this app's name in a shared database and on MQTT (default: the host name)")
    add(
        "--mqtt-url",
        help="publish alerts, per-minute counts and online state to this MQTT broker: "
        "mqtt[s]://[user:password@]host[:port][/topic-prefix]",
    )
    add("--mqtt-queue", type=int, help="messages kept while the MQTT broker is away (default %(default)s)")
    set_settings_defaults(parser, environ)
    return settings_from_args(parser.parse_args(argv))


def ensure_port_free(host: str, port: int) -> None:
    """Bind the address once before the slow model load, so a busy port fails in a second, not after it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does; ignores TIME_WAIT
            sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is already in use: stop the other server or pick --port") from None
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """`docker stop`, systemd and kill send SIGTERM: shut down as on Ctrl+C, releasing the camera."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = parse_args(argv, dict(os.environ))
        validate(settings)
        sources_from_settings(settings)  # cheap checks first: the model load below takes seconds
        ensure_port_free(settings["HOST"], settings["PORT"])
        from werkzeug.serving import make_server

        from maskdetector.web.app import create_app  # imports TensorFlow: only once the input is known good
        from maskdetector.web.state import get_state

        app = create_app(settings)
        try:
            server = make_server(settings["HOST"], settings["PORT"], app, threaded=True)
        except OSError as exc:  # taken between the check and now
            raise UserError(f"cannot listen on {settings['HOST']}:{settings['PORT']} ({exc.strerror or exc})") from None
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    names = ", ".join(f"{name} ({camera.hub.source_name})" for name, camera in get_state(app).cameras.items())
    log.info("serving %s on http://%s:%s (Ctrl+C to stop)", names, *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        get_state(app).close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
