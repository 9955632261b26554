"""app.py's HTTP server: werkzeug's threaded server, with a timeout on every connection's socket.

Without one, a client that opens a connection and sends half its headers (or keeps an idle keep-alive, or stops
reading a stream) holds a server thread for good; 300 of them held 300 threads. With `socket_timeout`, a read
or write that waits longer ends that connection (logged by werkzeug as a timed-out request). Streams never go
quiet for long: a viewer gets a frame at least every second (streaming.KEEPALIVE_S).
"""

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.serving import make_server as werkzeug_server


def make_server(app: Flask, host: str, port: int, socket_timeout: float) -> BaseWSGIServer:
    """A threaded server for `app` on host:port whose connections time out after `socket_timeout` seconds of
    silence; OSError if the address cannot be bound."""

    class TimedRequestHandler(WSGIRequestHandler):
        timeout = socket_timeout  # socketserver.StreamRequestHandler puts it on the connection's socket

    return werkzeug_server(host, port, app, threaded=True, request_handler=TimedRequestHandler)
