"""The HTTP transfer's fast GET path falls back to requests' full path when the server
redirects or sets cookies: the bytes are right either way."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sarra.transfer import for_url

pytestmark = pytest.mark.integration

BODY = b"moved but found\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/old.txt":
            self.send_response(302)
            self.send_header("Location", "/new.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/cookie.txt":
            if "session=1" not in (self.headers.get("Cookie") or ""):
                self.send_response(302)
                self.send_header("Set-Cookie", "session=1; Path=/")
                self.send_header("Location", "/cookie.txt")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        if self.path in ("/new.txt", "/cookie.txt"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
            return
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("path", ["/old.txt", "/cookie.txt", "/new.txt"])
def test_redirects_and_cookies_still_deliver_the_right_bytes(server, path):
    t = for_url(server)
    try:
        for _ in range(2):  # the second GET reuses the session (and its cookie)
            out = io.BytesIO()
            assert t.get(path, out) == len(BODY)
            assert out.getvalue() == BODY
    finally:
        t.close()
