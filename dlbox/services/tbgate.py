"""TensorBoard's own WSGI application served by one server that checks dlbox's token: no second port.

TensorBoard has no authentication. A gate in front of a TensorBoard listening on a loopback port would leave
that port open to every local user; here the gate is a WSGI middleware around TensorBoard's application,
inside TensorBoard's process, and the only socket is the one the user asked for. Run as
``python -m dlbox.services.tbgate [--no-tensorflow] -- TENSORBOARD_ARGS`` with the token in the environment
variable ``DLBOX_BOARD_TOKEN`` (not on the command line, which every user can read in ps).

The first request with ``?token=...`` gets an HttpOnly cookie and a redirect to the same page without the
token; scripts may send ``Authorization: token ...``. Requests are never logged (a request line can hold the
token). Tokens are compared in constant time."""

from __future__ import annotations

import hmac
import http.cookies
import os
import sys
import types
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlencode

COOKIE = "dlbox_token"
TOKEN_ENV = "DLBOX_BOARD_TOKEN"
DENIED = b"403: this server needs its token: open the URL that dlbox printed when it started\n"


def valid(token: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _cookie(header: str) -> str | None:
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(header or "")
    except http.cookies.CookieError:
        return None
    return jar[COOKIE].value if COOKIE in jar else None


def _authorization(header: str) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    return value.strip() if scheme.lower() in ("token", "bearer") else None


def gate(app: Callable, token: str) -> Callable:
    """``app`` answering only requests that carry ``token`` (query, cookie or Authorization header)."""

    def gated(environ: dict, start_response) -> Iterable[bytes]:
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        given = dict(query).get("token")
        method = environ.get("REQUEST_METHOD", "GET")
        if valid(token, given) and method in ("GET", "HEAD"):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/")
            start_response("302 Found", [("Location", path + (f"?{rest}" if rest else "")),
                                         ("Set-Cookie", f"{COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/"),
                                         ("Content-Length", "0")])  # fmt: skip
            return [b""]
        if valid(token, given) or valid(token, _cookie(environ.get("HTTP_COOKIE", ""))) or valid(
            token, _authorization(environ.get("HTTP_AUTHORIZATION", ""))
        ):
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(DENIED)))])  # fmt: skip
        return [b""] if method == "HEAD" else [DENIED]

    return gated


def main(argv: list[str] | None = None) -> int:
    import logging

    argv = list(sys.argv[1:] if argv is None else argv)
    token = os.environ.pop(TOKEN_ENV, "")
    if not token:
        sys.stderr.write(f"error: {TOKEN_ENV} is not set; refusing to serve TensorBoard without a token\n")
        return 2
    if argv and argv[0] == "--no-tensorflow":  # TensorBoard's switch for its TensorFlow stub
        sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
        argv = argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    from tensorboard import program
    from werkzeug import serving

    class QuietHandler(program._WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:
            pass  # the first request line holds the token

        def log(self, *args, **kwargs) -> None:
            pass

    class GatedServer(program.WerkzeugServer):
        def __init__(self, wsgi_app, flags):
            super().__init__(gate(wsgi_app, token), flags)
            self.RequestHandlerClass = QuietHandler

    assert issubclass(QuietHandler, serving.WSGIRequestHandler)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sys.argv[0] = "tensorboard"
    tb = program.TensorBoard(server_class=GatedServer)
    tb.configure(argv=["tensorboard", *argv])
    return tb.main()


if __name__ == "__main__":
    sys.exit(main())
