"""MLflow's tracking server in one process, behind dlbox's token when there is one.

``python -m dlbox.track.gate --host H --port P --backend URI --artifacts DIR`` does what ``mlflow server`` does for
a SQLite store with served artifacts (``mlflow.server.constants`` names the settings its workers read;
``initialize_backend_stores`` creates or upgrades the database) and serves MLflow's ASGI application with
uvicorn, without the extra CLI process and job runners. With a token in the environment variable
``DLBOX_TRACK_TOKEN`` (not on the command line, which every user can read in ps) the application is wrapped in a
token check, inside this process, on the only socket: MLflow has no authentication of its own. The first request
with ``?token=...`` gets an HttpOnly cookie and a redirect; MLflow clients send ``Authorization: Bearer TOKEN``
(``MLFLOW_TRACKING_TOKEN``). Tokens are compared in constant time (``dlbox.services.tbgate.valid``).
"""

from __future__ import annotations

import argparse
import os
from urllib.parse import parse_qsl, urlencode

from dlbox.services.tbgate import COOKIE, DENIED, _authorization, _cookie, valid

TOKEN_ENV = "DLBOX_TRACK_TOKEN"


def token_gate(app, token: str):
    """The ASGI ``app`` answering only requests that carry ``token`` (query, cookie or Authorization header)."""

    async def gated(scope, receive, send):
        if scope["type"] != "http":  # lifespan events
            return await app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        if valid(token, given) and scope["method"] in ("GET", "HEAD"):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
                                    (b"set-cookie", f"{COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/".encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return None
        if (valid(token, given) or valid(token, _cookie(headers.get("cookie", "")))
                or valid(token, _authorization(headers.get("authorization", "")))):  # fmt: skip
            return await app(scope, receive, send)
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(DENIED)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": DENIED})
        return None

    return gated


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m dlbox.track.gate")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--artifacts", required=True)
    a = p.parse_args(argv)
    token = os.environ.pop(TOKEN_ENV, None) or None
    from mlflow.server import constants as c

    os.environ.update({c.BACKEND_STORE_URI_ENV_VAR: a.backend, c.REGISTRY_STORE_URI_ENV_VAR: a.backend,
                       c.ARTIFACT_ROOT_ENV_VAR: "mlflow-artifacts:/", c.SERVE_ARTIFACTS_ENV_VAR: "true",
                       c.ARTIFACTS_DESTINATION_ENV_VAR: a.artifacts, "_MLFLOW_SGI_NAME": "uvicorn",
                       "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # fmt: skip
    if token:  # reached by other machines' names and addresses: the token, not the Host header, guards it
        os.environ.setdefault("MLFLOW_SERVER_ALLOWED_HOSTS", "*")
    from mlflow.server.handlers import initialize_backend_stores

    initialize_backend_stores(a.backend, a.backend, "mlflow-artifacts:/")
    import warnings

    import uvicorn

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # MLflow's own use of starlette's WSGI shim
    from mlflow.server.fastapi_app import app

    # access_log off: a request line can hold the token
    uvicorn.run(token_gate(app, token) if token else app, host=a.host, port=a.port, workers=1, access_log=False,
                log_level="warning")  # fmt: skip


if __name__ == "__main__":
    main()
