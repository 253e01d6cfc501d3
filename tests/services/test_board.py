"""`dlbox board`: a real TensorBoard over a runs folder lists a run's scalars through its HTTP data API;
with a token (forced for a non-local --ip) it answers 403 without it; Ctrl-C stops it."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from dlbox.services.config import BoardConfig
from tests.services.helpers import alive, http_get, started, stop


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from dlbox.engine.metrics import MetricsLogger

    root = tmp_path_factory.mktemp("runs")
    logger = MetricsLogger(root / "classify" / "r1")
    for step in (1, 2):
        logger.log({"epoch": step, "step": step, "train/loss": 1.0 / step, "val/accuracy": 0.5 + step / 10})
    logger.close()
    return root


def _tags(api: str, token: str | None = None, timeout: float = 30) -> dict:
    """TensorBoard reads the folder in the background after it starts answering: wait for the run."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = http_get(f"{api}/plugin/scalars/tags", token=token)
        assert status == 200, (status, body[:200])
        tags = json.loads(body)
        if tags or time.monotonic() > deadline:
            return tags
        time.sleep(0.3)


def test_lists_the_runs_scalars_on_localhost_without_a_token(runs, tmp_path):
    with started("board", runs, cwd=tmp_path) as (doc, proc, _):
        assert doc["token"] is None and doc["url"].startswith("http://127.0.0.1:")
        tags = _tags(doc["api"])
        assert set(tags) == {"classify/r1/tensorboard"}
        assert {"train/loss", "val/accuracy"} <= set(tags["classify/r1/tensorboard"])
        status, body = http_get(f"{doc['api']}/plugin/scalars/scalars?run=classify/r1/tensorboard&tag=train/loss")
        assert status == 200 and [v for _, _, v in json.loads(body)] == [1.0, 0.5]


def test_with_a_token_it_answers_403_without_it_and_ctrl_c_stops_it(runs, tmp_path):
    with started("board", runs, "--token", cwd=tmp_path) as (doc, proc, err_path):
        token = doc["token"]
        assert token and doc["url"].endswith(f"/?token={token}")
        assert http_get(f"{doc['api']}/plugin/scalars/tags")[0] == 403
        assert http_get(f"{doc['api']}/plugin/scalars/tags", token="x" + token[1:])[0] == 403
        assert "classify/r1/tensorboard" in _tags(doc["api"], token=token)
        # A browser: the printed URL sets an HttpOnly cookie and drops the token from the address.
        conn = http.client.HTTPConnection("127.0.0.1", doc["port"], timeout=30)
        conn.request("GET", f"/?token={token}")
        first = conn.getresponse()
        first.read()
        assert first.status == 302 and first.getheader("Location") == "/"
        cookie = first.getheader("Set-Cookie")
        assert "HttpOnly" in cookie
        conn.request("GET", "/data/plugin/scalars/tags", headers={"Cookie": cookie.split(";")[0]})
        second = conn.getresponse()
        assert second.status == 200 and "classify/r1/tensorboard" in json.loads(second.read())
        conn.close()
        assert stop(proc) == 0
        assert "TensorBoard stopped" in err_path.read_text() and token not in err_path.read_text()
        assert not alive(doc["pid"])


def test_a_non_local_ip_always_gets_a_token():
    assert BoardConfig(ip="0.0.0.0").with_token and BoardConfig(ip="::").with_token
    assert not BoardConfig(ip="127.0.0.1").with_token and BoardConfig(ip="127.0.0.1", token=True).with_token


def test_with_a_token_no_port_of_the_process_tree_serves_data_without_it(runs, tmp_path):
    """Every listening socket of `dlbox board --token` and of every process it started (TensorBoard, a data
    server) answers 403 without the token: there is no ungated TensorBoard port behind the gate."""
    import psutil

    with started("board", runs, "--token", cwd=tmp_path) as (doc, proc, _):
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        ports = {c.laddr.port for p in tree for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        assert doc["port"] in ports
        for port in ports:
            for path in ("/data/runs", "/data/plugin/scalars/tags", "/"):
                status, _ = http_get(f"http://127.0.0.1:{port}{path}")
                assert status == 403, (port, path, status)
        assert "classify/r1/tensorboard" in _tags(doc["api"], token=doc["token"])
