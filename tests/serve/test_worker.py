"""Models in worker processes (`dlbox serve --worker process`, the default): stopped with the server, and a
worker that dies fails its requests with a 500 and takes the server out of readiness instead of hanging it."""

from __future__ import annotations

import os
import signal
import time

import requests


def test_the_worker_processes_stop_with_the_server(trained):
    from dlbox.serve.server import start

    with start([f"digits={trained['digits_run']}", f"det={trained['det_run']}"], port=0, threads=1, access_log=False) as s:
        procs = [v["1"].executor.proc for v in s.state.models.values()]
        assert len({p.pid for p in procs} | {os.getpid()}) == 3  # two processes of their own
        f = trained["digit_files"]["3"][0]
        r = requests.post(f"{s.url}/v1/models/digits/predict", data=f.read_bytes(), timeout=60)
        assert r.status_code == 200 and r.json()[0]["predictions"]
    assert [p.poll() for p in procs] == [0, 0]  # told to stop, and stopped


def test_a_worker_that_dies_fails_its_requests_with_500_and_the_server_is_not_ready(trained, server_log):
    from dlbox.serve.server import start

    with start([f"digits={trained['digits_run']}"], port=0, threads=1) as s:
        f = trained["digit_files"]["5"][0]
        url = f"{s.url}/v1/models/digits/predict"
        assert requests.post(url, data=f.read_bytes(), timeout=60).status_code == 200
        assert requests.get(f"{s.url}/v2/health/ready", timeout=10).status_code == 200
        proc = s.state.models["digits"]["1"].executor.proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        t = time.monotonic()
        r = requests.post(url, data=f.read_bytes(), timeout=60)
        assert r.status_code == 500 and "inference failed on model 'digits'" in r.json()["error"]
        assert time.monotonic() - t < 10  # answered, not left to time out
        assert requests.get(f"{s.url}/v2/health/ready", timeout=10).status_code == 503
        m = requests.get(f"{s.url}/v2/models/digits/ready", timeout=10)
        assert m.status_code == 503 and m.json()["ready"] is False
    assert "TRACEBACK" not in server_log.text() and "digits: inference failed" in server_log.text()
