"""`dlbox serve` over real HTTP on a loopback port: answers equal the CLI's, batching under concurrency, health
under load, bad requests, model repository versions, metrics, security, graceful shutdown."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from tests.conftest import cli_env, run_main


def _predict(url: str, path, *, multipart: bool = False, **params) -> requests.Response:
    data = path.read_bytes()
    if multipart:
        return requests.post(url, files={"file": (path.name, data, "image/png")}, params=params, timeout=60)
    return requests.post(url, data=data, headers={"content-type": "image/png"}, params=params, timeout=60)


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _meta(server, model: str) -> dict:
    return requests.get(f"{server.url}/v2/models/{model}", timeout=10).json()


@pytest.fixture(params=["process", "thread"])
def served(request, server, trained):
    """The session's server (each model in a worker process, the default) and one with digits and det in threads
    of the server's process (--worker thread): the routes answer alike."""
    if request.param == "process":
        yield server
        return
    from dlbox.serve.server import start

    with start([f"digits={trained['digits_run']}", f"det={trained['det_run']}"], port=0, max_batch=16, max_delay_ms=5,
               threads=2, worker="thread", access_log=False) as s:  # fmt: skip
        yield s


def test_task_route_answers_equal_the_cli(served, trained):
    server = served
    from dlbox.tasks.classify.predict import predict as classify_predict
    from dlbox.tasks.detect.predict import predict as detect_predict

    files = [fs[0] for fs in trained["digit_files"].values()]
    cli = classify_predict(trained["digits_run"], [str(f) for f in files], topk=3)
    for i, (f, want) in enumerate(zip(files, cli, strict=True)):
        r = _predict(f"{server.url}/v1/models/digits/predict", f, multipart=i % 2 == 0, topk=3)
        assert r.status_code == 200, r.text
        (got,) = r.json()
        assert got["file"] == (f.name if i % 2 == 0 else "body")
        assert [p["label"] for p in got["predictions"]] == [p["label"] for p in want["predictions"]]
        assert np.allclose([p["prob"] for p in got["predictions"]], [p["prob"] for p in want["predictions"]], atol=2e-6)
    assert sum(c["predictions"][0]["label"] == f.parent.name for c, f in zip(cli, files, strict=True)) >= 8

    shapes = trained["shape_files"]
    cli = detect_predict(trained["det_run"], [str(f) for f in shapes], conf=0.3)
    assert sum(len(c["detections"]) for c in cli) > 0
    for f, want in zip(shapes, cli, strict=True):
        (got,) = _predict(f"{server.url}/v1/models/det/predict", f, conf=0.3).json()
        assert (got["width"], got["height"]) == (want["width"], want["height"])
        assert [d["label"] for d in got["detections"]] == [d["label"] for d in want["detections"]]
        for a, b in zip(got["detections"], want["detections"], strict=True):
            assert np.allclose(a["box"], b["box"], atol=1e-3) and abs(a["score"] - b["score"]) < 1e-4


def test_v2_infer_equals_the_cli_json_and_binary(server, trained):
    from PIL import Image

    from dlbox.tasks.classify.inference import load_classifier
    from dlbox.tasks.classify.predict import predict as classify_predict
    from dlbox.tasks.detect.data import letterbox, to_tensor
    from dlbox.tasks.detect.predict import predict as detect_predict

    files = [fs[1] for fs in trained["digit_files"].values()]
    cli = classify_predict(trained["digits_run"], [str(f) for f in files], topk=1)
    tf = load_classifier(trained["digits_run"]).transform()
    x = np.stack([tf(Image.open(f).convert("RGB")).numpy() for f in files]).astype(np.float32)
    (inp,) = _meta(server, "digits")["inputs"]
    assert inp["datatype"] == "FP32" and inp["shape"] == [-1, *x.shape[1:]]
    body = {"id": "a1", "inputs": [{"name": inp["name"], "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    r = requests.post(f"{server.url}/v2/models/digits/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "a1" and out["model_name"] == "digits"
    (logits,) = out["outputs"]
    labels = np.asarray(logits["data"]).reshape(logits["shape"]).argmax(1)
    classes = _meta(server, "digits")["parameters"]["classes"]
    assert [classes[i] for i in labels] == [c["predictions"][0]["label"] for c in cli]

    # the binary tensor data extension: raw FP32 in, raw FP32 out, the same numbers
    head = json.dumps({"inputs": [{"name": inp["name"], "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()  # fmt: skip
    r = requests.post(f"{server.url}/v2/models/digits/infer", data=head + x.tobytes(), timeout=60,
                      headers={"inference-header-content-length": str(len(head)), "content-type": "application/octet-stream"})  # fmt: skip
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    meta = json.loads(r.content[:n])
    raw = np.frombuffer(r.content[n:], dtype="<f4").reshape(meta["outputs"][0]["shape"])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == raw.nbytes
    assert np.allclose(raw, np.asarray(logits["data"]).reshape(raw.shape), atol=1e-5)

    # detection: letterboxed tensors in, padded boxes out; scaled back they are the CLI's boxes
    shapes = trained["shape_files"][:2]
    size = _meta(server, "det")["inputs"][0]["shape"][-1]
    canvases = [letterbox(Image.open(f).convert("RGB"), size) for f in shapes]
    x = np.stack([to_tensor(c).numpy() for c, _ in canvases]).astype(np.float32)
    head = json.dumps({"inputs": [{"name": "images", "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}]}).encode()  # fmt: skip
    r = requests.post(f"{server.url}/v2/models/det/infer", data=head + x.tobytes(), timeout=60,
                      headers={"inference-header-content-length": str(len(head))})  # fmt: skip
    assert r.status_code == 200, r.text
    outs = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in r.json()["outputs"]}
    cli = detect_predict(trained["det_run"], [str(f) for f in shapes], conf=0.3)
    for i, ((_, scale), want) in enumerate(zip(canvases, cli, strict=True)):
        keep = outs["scores"][i][: outs["num_detections"][i]] >= 0.3
        boxes = outs["boxes"][i][: outs["num_detections"][i]][keep] / scale
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, want["width"])
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, want["height"])
        assert np.allclose(boxes, [d["box"] for d in want["detections"]], atol=1e-3)


def test_16_concurrent_clients_are_batched_and_each_answer_is_its_sequential_one(served, trained):
    server = served
    files = [f for fs in trained["digit_files"].values() for f in fs][:16]
    url = f"{server.url}/v1/models/digits/predict"
    sequential = [_predict(url, f).json() for f in files]
    before = requests.get(f"{server.url}/metrics", timeout=10).text
    barrier = threading.Barrier(16)

    def client(i):
        barrier.wait()
        return [_predict(url, files[i]).json() for _ in range(4)]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(client, range(16)))
    after = requests.get(f"{server.url}/metrics", timeout=10).text
    for want, got in zip(sequential, answers, strict=True):
        for g in got:
            assert [p["label"] for p in g[0]["predictions"]] == [p["label"] for p in want[0]["predictions"]]
            assert np.allclose([p["prob"] for p in g[0]["predictions"]], [p["prob"] for p in want[0]["predictions"]], atol=1e-5)
    count = _metric(after, "nv_inference_count_total", model="digits") - _metric(before, "nv_inference_count_total", model="digits")
    execs = _metric(after, "nv_inference_exec_count_total", model="digits") - _metric(before, "nv_inference_exec_count_total", model="digits")
    assert count == 64
    assert count / execs > 1, (count, execs)
    assert _metric(after, "nv_inference_batch_size_bucket", model="digits", le="1.0") < count


def test_health_answers_while_the_model_is_busy(server, trained):
    files = trained["shape_files"]
    url = f"{server.url}/v1/models/det/predict"
    done = []
    started = threading.Event()

    def client(i):
        started.set()
        for _ in range(6):
            done.append(_predict(url, files[i % len(files)]).status_code)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client, i) for i in range(8)]
        started.wait()
        while not done:  # the model is at work
            time.sleep(0.005)
        r = requests.get(f"{server.url}/v2/health/ready", timeout=30)
        answered_with = len(done)
        for f in futures:
            f.result()
    assert r.status_code == 200 and r.json() == {"ready": True}
    assert answered_with < 48  # it answered while requests of the model were still being worked on
    assert done == [200] * 48


def _huge_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, format="PNG")  # 100 megapixels in a few hundred kB
    return buf.getvalue()


def test_bad_requests_are_4xx_json_naming_the_problem_and_the_server_stays_ready(server, trained, server_log):
    png = trained["digit_files"]["3"][0].read_bytes()
    x = {"name": "images", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": [0.0] * 3072}
    v2 = f"{server.url}/v2/models/digits/infer"
    no_data = {k: v for k, v in x.items() if k != "data"}
    head = json.dumps({"inputs": [{**no_data, "parameters": {"binary_data_size": 12288}}]}).encode()
    task = f"{server.url}/v1/models/digits/predict"
    cases = [
        ("not an image", lambda: requests.post(task, data=b"hello, world" * 10), 400, "not an image"),
        ("truncated", lambda: requests.post(task, data=png[: len(png) // 2]), 400, "truncated"),
        ("truncated multipart", lambda: requests.post(task, data=b"--xx\r\nContent-Disposition: form-data; name=\"file\"; "
                                                      b"filename=\"a.png\"\r\n\r\n" + png[:50],
                                                      headers={"content-type": "multipart/form-data; boundary=xx"}), 400, "multipart"),
        ("100 megapixels", lambda: requests.post(task, data=_huge_png()), 413, "megapixels"),
        ("datatype", lambda: requests.post(v2, json={"inputs": [{**x, "datatype": "FP64"}]}), 400, "datatype"),
        ("shape", lambda: requests.post(v2, json={"inputs": [{**x, "shape": [1, 3, 31, 32], "data": [0.0] * 2976}]}), 400, "shape"),
        ("count", lambda: requests.post(v2, json={"inputs": [{**x, "data": [0.0] * 5}]}), 400, "3072"),
        ("input name", lambda: requests.post(v2, json={"inputs": [{**x, "name": "pixels"}]}), 400, "unknown input"),
        ("unknown model", lambda: requests.post(f"{server.url}/v2/models/nope/infer", json={"inputs": [x]}), 404, "unknown model"),
        ("unknown version", lambda: requests.get(f"{server.url}/v2/models/digitsx/versions/7"), 404, "no version"),
        ("unknown model, task route", lambda: requests.post(f"{server.url}/v1/models/nope/predict", data=png), 404, "nope"),
        ("body over the limit", lambda: requests.post(task, data=b"\0" * (2**20 + 10)), 413, "limit"),
        ("body over the limit, chunked", lambda: requests.post(task, data=iter([b"\0" * 2**19] * 3)), 413, "limit"),
        ("malformed JSON", lambda: requests.post(v2, data=b'{"inputs": [', headers={"content-type": "application/json"}), 400, "malformed JSON"),
        ("binary overrun", lambda: requests.post(v2, data=head + b"\0" * 10, headers={"inference-header-content-length": str(len(head))}),
         400, "binary"),
        ("bad option", lambda: requests.post(task, data=png, params={"topk": "0"}), 400, "topk"),
        ("empty body", lambda: requests.post(task, data=b""), 400, "empty"),
    ]  # fmt: skip
    for what, send, status, fragment in cases:
        r = send()
        assert r.status_code == status, (what, r.status_code, r.text)
        assert fragment.lower() in r.json()["error"].lower(), (what, r.json())
        assert requests.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200, what
    ok = requests.post(task, data=png, timeout=30)
    assert ok.status_code == 200 and ok.json()[0]["predictions"][0]["label"] == "3"
    assert "TRACEBACK" not in server_log.text() and "Traceback" not in server_log.text()


def test_model_repository_versions_metadata_and_ready(server, trained):
    assert requests.get(f"{server.url}/v2", timeout=10).json()["extensions"][0] == "binary_tensor_data"
    meta = _meta(server, "digitsx")
    assert meta["versions"] == ["1", "2"] and meta["platform"] == "dlbox_classify"
    for v in ("1", "2"):
        assert requests.get(f"{server.url}/v2/models/digitsx/versions/{v}/ready", timeout=10).json()["ready"] is True
    assert requests.get(f"{server.url}/v2/models/digitsx/versions/3/ready", timeout=10).status_code == 404
    f = trained["digit_files"]["5"][0]
    a = _predict(f"{server.url}/v1/models/digitsx/predict", f, version="1").json()
    b = _predict(f"{server.url}/v1/models/digits/predict", f).json()
    assert a[0]["predictions"][0]["label"] == b[0]["predictions"][0]["label"] == "5"
    models = requests.get(f"{server.url}/v1/models", timeout=10).json()
    assert {m["id"]: m["task"] for m in models["data"]} == {"det": "detect", "digits": "classify", "digitsx": "classify",
                                                            "words": "text", "speech": "asr", "faces": "face"}


def test_word2vec_task_route_embeddings_and_v2_bytes_equal_the_library(server, trained):
    from dlbox.tasks.text import w2v

    wv = w2v.load(trained["w2v"])
    r = requests.post(f"{server.url}/v1/models/words/predict", data=b"dog", params={"topn": 4},
                      headers={"content-type": "text/plain"}, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    (got,) = r.json()
    want = w2v.similar(wv, ["dog"], topn=4)  # what `dlbox text w2v similar MODEL dog --topn 4 --json` prints
    assert got["similar"] == want["similar"] and got["query"] == want["query"]
    r = requests.post(f"{server.url}/v1/embeddings", json={"model": "words", "input": ["cat", "blue"]}, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1]
    assert np.allclose([d["embedding"] for d in data], [wv["cat"], wv["blue"]], atol=1e-5)
    body = {"inputs": [{"name": "words", "shape": [2], "datatype": "BYTES", "data": ["cat", "blue"]}],
            "outputs": [{"name": "vectors", "parameters": {"binary_data": True}}]}  # fmt: skip
    r = requests.post(f"{server.url}/v2/models/words/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    vectors = np.frombuffer(r.content[n:], "<f4").reshape(json.loads(r.content[:n])["outputs"][0]["shape"])
    assert np.allclose(vectors, [wv["cat"], wv["blue"]], atol=1e-6)
    r = requests.post(f"{server.url}/v1/models/words/predict", data=b"unicorn", timeout=30)
    assert r.status_code == 400 and "unicorn" in r.json()["error"]
    # a bad word batched with good ones fails alone
    with ThreadPoolExecutor(16) as pool:
        rs = list(pool.map(lambda w: requests.post(f"{server.url}/v1/models/words/predict", data=w, timeout=30),
                           [b"unicorn", b"dog"] * 16))  # fmt: skip
    assert [r.status_code for r in rs] == [400, 200] * 16
    assert all(r.json()[0]["similar"] == w2v.similar(wv, ["dog"])["similar"] for r in rs[1::2])


def test_openapi_metrics_and_page(server):
    doc = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    for path in ("/v2/health/ready", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer",
                 "/v1/models/{name}/predict", "/v1/audio/transcriptions", "/v1/embeddings", "/metrics"):
        assert path in doc["paths"], path
    metrics = requests.get(f"{server.url}/metrics", timeout=10).text
    for name in ("nv_inference_request_success_total", "nv_inference_request_failure_total", "nv_inference_count_total",
                 "nv_inference_exec_count_total", "nv_inference_queue_duration_seconds_bucket",
                 "nv_inference_compute_infer_duration_seconds_bucket", "nv_inference_batch_size_bucket",
                 "nv_inference_pending_request_count", "nv_model_loaded", "dlbox_http_requests_total"):
        assert name in metrics, name
    assert _metric(metrics, "nv_model_loaded") == 7  # digits, det, digitsx versions 1 and 2, words, speech, faces
    page = requests.get(server.url + "/", timeout=10)
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in requests.get(server.url + "/static/app.js", timeout=10).text  # nothing fetched from elsewhere


def test_a_non_local_bind_without_a_key_is_refused_in_one_line(capsys, trained, monkeypatch):
    monkeypatch.delenv("DLBOX_API_KEY", raising=False)
    res = run_main(capsys, "serve", trained["digits_run"], "--host", "0.0.0.0", "--port", "0")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: --host 0.0.0.0") and "api-key" in res.stderr
    assert res.stdout == ""


def test_with_a_key_requests_without_it_get_401_and_shutdown_finishes_requests_in_flight(trained, server_log):
    from dlbox.serve.server import start

    key = "k3y-" + "x" * 28
    s = start([f"det={trained['det_run']}"], port=0, api_key=key, max_batch=1)
    url = f"{s.url}/v1/models/det/predict"
    f = trained["shape_files"][0]
    try:
        r = _predict(url, f)
        assert r.status_code == 401 and "API key" in r.json()["error"]
        assert requests.post(url, data=f.read_bytes(), headers={"authorization": "Bearer wrong"}).status_code == 401
        assert requests.get(f"{s.url}/metrics", timeout=10).status_code == 401
        assert requests.get(f"{s.url}/v2/health/ready", timeout=10).status_code == 200  # probes need no key
        assert requests.post(url, data=f.read_bytes(), headers={"x-api-key": key}).status_code == 200
        batcher = s.state.models["det"]["1"].batcher

        def post():
            try:
                return requests.post(url, data=f.read_bytes(), headers={"authorization": f"Bearer {key}"}, timeout=60).status_code
            except requests.ConnectionError:  # sent after the server stopped listening
                return "refused"

        in_flight = 0
        for _ in range(10):  # bursts until requests queue up behind the one computing (on a fast machine...)
            with ThreadPoolExecutor(16) as pool:
                futures = [pool.submit(post) for _ in range(16)]
                while not in_flight and not all(fu.done() for fu in futures):
                    if batcher.qsize() >= 3:
                        in_flight = batcher.qsize()
                        s.stop()  # they are finished, not dropped
                    time.sleep(0.0005)
                codes = [fu.result() for fu in futures]
            if in_flight:
                break
        assert in_flight, "no burst queued up"
    finally:
        s.stop()
    assert codes.count(200) >= in_flight and set(codes) <= {200, "refused"}, codes
    assert key not in server_log.text()


def test_a_full_queue_answers_503_with_retry_after(trained):
    from dlbox.serve.server import start

    with start([f"det={trained['det_run']}"], port=0, max_batch=1, max_queue=1, access_log=False) as s:
        url = f"{s.url}/v1/models/det/predict"
        data = trained["shape_files"][1].read_bytes()
        codes: list = []
        for _ in range(5):  # bursts until one overflows the queue of one
            with ThreadPoolExecutor(24) as pool:
                rs = list(pool.map(lambda _: requests.post(url, data=data, timeout=60), range(24)))
            codes += [r.status_code for r in rs]
            full = [r for r in rs if r.status_code == 503]
            if full:
                break
        assert full and full[0].headers["retry-after"] == "1" and "try again" in full[0].json()["error"]
        assert set(codes) <= {200, 503} and 200 in codes


@pytest.mark.parametrize("spec, fragment", [("nope/run", "does not exist"), ("x=y=z", "does not exist")])
def test_bad_model_specs_are_one_line_errors_before_binding(capsys, spec, fragment):
    res = run_main(capsys, "serve", spec, "--port", "0")
    assert res.returncode == 2 and fragment in res.stderr and res.stderr.count("\n") == 1


def test_the_command_prints_one_json_line_with_its_url_and_ctrl_c_stops_it_cleanly(trained):
    proc = subprocess.Popen([sys.executable, "-m", "dlbox", "serve", trained["repo"], "--port", "0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())  # fmt: skip
    try:
        line = json.loads(proc.stdout.readline())
        assert [(m["name"], m["version"], m["task"], m["backend"]) for m in line["models"]] == [
            ("digitsx", "1", "classify", "onnxruntime"), ("digitsx", "2", "classify", "onnxruntime")]  # --backend auto
        while requests.get(line["url"] + "/v2/health/ready", timeout=10).status_code != 200:  # 503 while loading
            time.sleep(0.05)
        r = requests.post(line["url"] + "/v1/models/digitsx/predict", data=trained["digit_files"]["2"][0].read_bytes(), timeout=30)
        assert r.status_code == 200 and r.headers["x-request-id"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == "" and "Traceback" not in err
    assert f'{r.headers["x-request-id"]} 127.0.0.1 - "POST /v1/models/digitsx/predict" 200' in err  # the access log line


def test_cors_is_off_unless_an_origin_is_allowed_and_then_covers_every_route(server, trained):
    f = trained["digit_files"]["4"][0]
    origin = "http://localhost:3000"
    r = requests.post(f"{server.url}/v1/models/digits/predict", data=f.read_bytes(), headers={"origin": origin}, timeout=60)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers  # off by default
    from dlbox.serve.server import start

    with start([f"digits={trained['digits_run']}"], port=0, cors=[origin], worker="thread", threads=1, access_log=False) as s:
        pre = requests.options(f"{s.url}/v1/models/digits/predict", timeout=10, headers={
            "origin": origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type"})  # fmt: skip
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == origin
        for kwargs in ({"data": f.read_bytes()}, {"files": {"file": (f.name, f.read_bytes(), "image/png")}}):  # both lanes
            r = requests.post(f"{s.url}/v1/models/digits/predict", headers={"origin": origin}, timeout=60, **kwargs)
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
            assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        other = requests.post(f"{s.url}/v1/models/digits/predict", data=f.read_bytes(), headers={"origin": "http://evil.example"},
                              timeout=60)  # fmt: skip
        assert "access-control-allow-origin" not in other.headers
