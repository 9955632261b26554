"""Serve live mask detection: `python app.py [--source 0|FILE|URL] ...`, then open http://127.0.0.1:5000.
Accounts: `python app.py users add NAME --role admin|viewer`, `users list`, `users token NAME` (`users --help`).

Every flag has a MASKDETECTOR_<NAME> environment variable (e.g. MASKDETECTOR_SOURCE); a flag wins.
Bad input (source, model, busy port) ends with one `error: ...` line and exit code 2.
"""

import errno
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from maskdetector.cli import EPILOG, OneLineParser, add_settings_options, settings_from_args
from maskdetector.errors import UserError
from maskdetector.sources.parsing import sources_from_settings
from maskdetector.vision.tensorflow_runtime import load_tensorflow

log = logging.getLogger("maskdetector.app")


def parse_args(argv: list[str] | None) -> dict[str, object]:
    """Command line over environment over defaults, as the validated settings dict create_app() takes."""
    parser = OneLineParser(
        description="Live face-mask detection in the browser. Accounts: `python app.py users --help`.", epilog=EPILOG
    )
    add_settings_options(parser)
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


def refuse_open_network(settings: dict[str, object]) -> None:
    """Listening beyond this machine needs an account: the streams and snapshots show people."""
    from maskdetector.web.accounts import ADD_HINT, AccountStore
    from maskdetector.web.auth import is_loopback

    host = str(settings["HOST"])
    if not is_loopback(host) and not AccountStore(Path(str(settings["DATA_DIR"]))).exists():
        raise UserError(f"--host {host} would show the cameras to the network, and there is no account: {ADD_HINT}")


def users(argv: list[str]) -> int:
    """`python app.py users ...` (maskdetector/web/users_command.py)."""
    from maskdetector.web.users_command import run_users

    try:
        output, note = run_users(argv)
    except (UserError, EOFError, KeyboardInterrupt) as exc:
        print(f"error: {exc or 'cancelled'}", file=sys.stderr)
        return 2
    sys.stdout.write(output)
    if note:
        print(note, file=sys.stderr)
    return 0


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """`docker stop`, systemd and kill send SIGTERM: shut down as on Ctrl+C, releasing the camera."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["users"]:
        return users(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = parse_args(argv)
        refuse_open_network(settings)
        sources_from_settings(settings)  # cheap checks first: the model load below takes seconds
        ensure_port_free(settings["HOST"], settings["PORT"])
        load_tensorflow()  # only once the input is known good: it takes seconds
        from maskdetector.web.app import create_app
        from maskdetector.web.serving import make_server
        from maskdetector.web.state import get_state

        app = create_app(settings)
        try:
            server = make_server(app, settings["HOST"], settings["PORT"], float(settings["SOCKET_TIMEOUT"]))
        except OSError as exc:  # taken between the check and now
            raise UserError(f"cannot listen on {settings['HOST']}:{settings['PORT']} ({exc.strerror or exc})") from None
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    names = ", ".join(f"{name} ({camera.hub.source_name})" for name, camera in get_state(app).cameras.items())
    try:  # a SIGTERM right after the line below must still shut down cleanly
        log.info("serving %s on http://%s:%s (Ctrl+C to stop)", names, *server.server_address[:2])
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        stopped = get_state(app).close()
    if not stopped:  # a capture thread is stuck in OpenCV (a hung stream): do not wait for it, nor tear down around it
        log.warning("exiting without waiting for a source that does not stop")
        logging.shutdown()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
