"""A token gate in front of a server that has no authentication of its own (TensorBoard): it listens where
the user asked and forwards to the server on loopback only when the request carries the token.

The URL printed once holds ``?token=...``; the first request with it gets an HttpOnly cookie and a redirect
to the same page without the token, so the token does not stay in the address bar or in the pages' own
requests. Scripts may send ``Authorization: token ...`` instead. Requests are not logged (the first one
carries the token)."""

from __future__ import annotations

import hmac
import http.client
import http.cookies
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

COOKIE = "dlbox_token"
# Hop-by-hop headers belong to one connection, not to the request or response being forwarded.
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
       "transfer-encoding", "upgrade", "content-length"}  # fmt: skip


class TokenProxy:
    """``TokenProxy(ip, port, target_port, token)``: serve in a thread after ``start()``; ``stop()``."""

    def __init__(self, ip: str, port: int, target_port: int, token: str):
        proxy = self

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            daemon_threads = True

        class Handler(_Handler):
            owner = proxy

        self.token, self.target_port = token, target_port
        self.httpd = Server((ip, port), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="dlbox-token-proxy", daemon=True)

    def start(self) -> TokenProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def valid(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())


class _Handler(BaseHTTPRequestHandler):
    owner: TokenProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass  # a request line can hold the token

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query = parse_qsl(url.query, keep_blank_values=True)
        given = dict(query).get("token")
        if self.owner.valid(given) and self.command in ("GET", "HEAD"):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            self.send_response(302)
            self.send_header("Location", url.path + (f"?{rest}" if rest else ""))
            self.send_header("Set-Cookie", f"{COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not (self.owner.valid(given) or self.owner.valid(self._cookie()) or self.owner.valid(self._header())):
            body = b"403: this server needs its token: open the URL that dlbox printed when it started\n"
            self.send_response(403)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        self._forward()

    def _cookie(self) -> str | None:
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            return None
        return jar[COOKIE].value if COOKIE in jar else None

    def _header(self) -> str | None:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        return value.strip() if scheme.lower() in ("token", "bearer") else None

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP | {"host", "cookie", "authorization"}}
        conn = http.client.HTTPConnection("127.0.0.1", self.owner.target_port, timeout=120)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:
            self.send_error(502, "the server behind the token gate does not answer")
            return
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
