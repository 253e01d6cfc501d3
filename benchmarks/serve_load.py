"""Load on `dlbox serve` over loopback: requests/s, p50/p99 latency and mean batch size at concurrency 1, 8 and 32,
with dynamic batching on and off, against the raw runtime (the same predictor called in-process: the ceiling).

    python benchmarks/serve_load.py [--digits RUN] [--det RUN] [--seconds 8] [--max-batch 16] [--worker process]

Without runs it trains the serve tests' models first (a digits classifier, a tinydet; about 30 s). The server runs
in its own process (`dlbox serve ... --json`). The load comes from `wrk` (Debian's package; a C load generator,
so that the clients take little of the cores they share with the server) with keep-alive connections posting
image bytes to /v1/models/NAME/predict, cycling through 32 images; without wrk, from threads of this process
(http.client), which on 2 cores take a core's worth themselves. Raw: decode + predict in-process, one image at
a time (latency) and in batches of --max-batch (throughput), measured before and after each model's rows (the
rows' "% of raw batched" is against the mean of the two: a VM's speed drifts by tens of percent within minutes). Server and raw
runtime use --threads intra-op threads (default 1: on 2 cores the server's HTTP side and the clients need the
other one, and 2 threads contending with other work made PyTorch's single-image calls 20x slower here).
While each row's load runs, a thread probes /v2/health/ready every 50 ms (the table's slowest answer). Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train_models(work: Path) -> tuple[str, str, Path, Path]:
    from dlbox.data.samples import write_sample
    from dlbox.data.shapes_det import write_shapes_det
    from dlbox.tasks.classify.config import ClassifyConfig
    from dlbox.tasks.classify.train import train as train_classifier
    from dlbox.tasks.detect.config import DetectConfig
    from dlbox.tasks.detect.train import train as train_detector

    write_sample("digits", work / "digits")
    clf = train_classifier(ClassifyConfig(data=str(work / "digits"), model="timm:test_efficientnet", img_size=32,
                                          epochs=3, lr=3e-3, augment="none", runs_dir=str(work / "runs"),
                                          name="digits", monitor_interval=0, threads=1))  # fmt: skip
    write_shapes_det(work / "shapes", seed=0, n_images=200)
    det = train_detector(DetectConfig(data=str(work / "shapes"), epochs=12, img_size=96, batch_size=16, threads=1,
                                      device="cpu", runs_dir=str(work / "runs"), name="shapes", monitor_interval=0))  # fmt: skip
    return clf["run_dir"], det["run_dir"], work / "digits", work / "shapes" / "images"


def images(folder: Path, n: int = 32) -> list[Path]:
    files = sorted(p for p in folder.rglob("*.png"))
    step = max(1, len(files) // n)
    return files[::step][:n]


def raw(source: str, files: list[Path], batch: int, repeats: int) -> dict[str, float]:
    """The ceiling: the same predictor in-process (the same backend the server chose), decode + predict, single
    and batched."""
    from dlbox.serve import backend
    from dlbox.serve.models import load, resolve

    payloads = [f.read_bytes() for f in files]
    spec = resolve([source])[0]
    backend.plan([spec], "auto")
    p = load(spec)
    for b in payloads[:4]:
        p.predict([p.decode(b)])
    single = []
    for i in range(repeats):
        t = time.perf_counter()
        p.predict([p.decode(payloads[i % len(payloads)])])
        single.append(time.perf_counter() - t)
    t, n = time.perf_counter(), 0
    while n < repeats:
        chunk = [payloads[(n + k) % len(payloads)] for k in range(batch)]
        p.predict([p.decode(b) for b in chunk])
        n += batch
    return {"p50_ms": 1000 * statistics.median(single), "single_rps": 1 / statistics.mean(single),
            "batched_rps": n / (time.perf_counter() - t)}  # fmt: skip


def start_server(models: list[str], max_batch: int, threads: int, worker: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DLBOX_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "dlbox", "serve", *models, "--port", "0", "--json", "--worker", worker,
                             "--max-batch", str(max_batch), "--threads", str(threads), "--no-access-log"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)  # fmt: skip
    url = json.loads(proc.stdout.readline())["url"]
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    while True:
        conn.request("GET", "/v2/health/ready")
        r = conn.getresponse()
        r.read()
        if r.status == 200:
            return proc, url
        time.sleep(0.1)


def metric(url: str, name: str, model: str) -> float:
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and f'model="{model}"' in line)  # fmt: skip


WRK_SCRIPT = """
local bodies, i = {}, 0
for path in io.lines(os.getenv("WRK_FILES")) do
  local f = io.open(path, "rb"); bodies[#bodies + 1] = f:read("*a"); f:close()
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def load_wrk(url: str, path: str, files: list[Path], concurrency: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "files.txt").write_text("".join(f"{f}\n" for f in files))
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "-s", str(Path(tmp) / "post.lua"),
                              url + path], capture_output=True, text=True, env={**os.environ, "WRK_FILES": str(Path(tmp) / "files.txt")},
                             check=True).stdout  # fmt: skip
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    bad = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|errors: connect|read|write|timeout)[: ]+(\d+)", out))
    return {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)), "p50_ms": _ms(lat["50"]),
            "p99_ms": _ms(lat["99"]), "errors": bad}  # fmt: skip


def load_python(url: str, path: str, payloads: list[bytes], concurrency: int, seconds: float) -> dict[str, float]:
    host, port = url.split("//")[1].split(":")
    lat: list[float] = []
    lock, counter, errors = threading.Lock(), [0], [0]
    end = time.perf_counter() + seconds

    def client(k: int):
        conn = http.client.HTTPConnection(host, int(port))
        while time.perf_counter() < end:
            with lock:
                i = counter[0]
                counter[0] += 1
            t = time.perf_counter()
            conn.request("POST", path, body=payloads[i % len(payloads)], headers={"content-type": "image/png"})
            r = conn.getresponse()
            r.read()
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                errors[0] += r.status != 200

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return {"rps": len(lat) / wall, "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "errors": errors[0]}  # fmt: skip


def load(url: str, model: str, files: list[Path], concurrency: int, seconds: float) -> dict[str, float]:
    """Requests/s, p50/p99 latency, errors and (from the server's metrics) the mean batch of one load."""
    path = f"/v1/models/{model}/predict"
    count0, exec0 = metric(url, "nv_inference_count_total", model), metric(url, "nv_inference_exec_count_total", model)
    stop, health = threading.Event(), []
    prober = threading.Thread(target=probe_health, args=(url, stop, health))
    prober.start()
    try:
        if shutil.which("wrk"):
            r = load_wrk(url, path, files, concurrency, seconds)
        else:
            r = load_python(url, path, [f.read_bytes() for f in files], concurrency, seconds)
    finally:
        stop.set()
        prober.join()
    count, execs = metric(url, "nv_inference_count_total", model) - count0, metric(url, "nv_inference_exec_count_total", model) - exec0
    return {**r, "mean_batch": count / max(execs, 1), "health_max_ms": 1000 * max(health, default=float("nan"))}


def probe_health(url: str, stop: threading.Event, seconds: list[float]) -> None:
    """GET /v2/health/ready every 50 ms while the load runs: how long a probe waits on a busy server."""
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.wait(0.05):
        t = time.perf_counter()
        conn.request("GET", "/v2/health/ready")
        r = conn.getresponse()
        r.read()
        seconds.append(time.perf_counter() - t)
        if r.status != 200:
            raise RuntimeError(f"/v2/health/ready answered {r.status} under load")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except OSError:
        name = ""
    return f"{name or platform.processor()}, {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--digits", help="a digits classifier run (default: train one)")
    ap.add_argument("--det", help="a tinydet run (default: train one)")
    ap.add_argument("--seconds", type=float, default=8, help="seconds of load per row (default: 8)")
    ap.add_argument("--worker", choices=("process", "thread"), default="process", help="dlbox serve --worker")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads of the server and of the raw runtime (default 1: the clients need a core)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    if args.digits and args.det:
        from dlbox.data.samples import write_sample
        from dlbox.data.shapes_det import write_shapes_det

        digits_run, det_run, digits_dir, det_dir = args.digits, args.det, work / "digits", work / "shapes" / "images"
        write_sample("digits", work / "digits")
        write_shapes_det(work / "shapes", seed=1, n_images=40)
    else:
        digits_run, det_run, digits_dir, det_dir = train_models(work)
    digits_imgs, det_imgs = images(digits_dir), images(det_dir)
    models = {"digits": (digits_run, digits_imgs), "tinydet": (det_run, det_imgs)}
    rows, ceilings = [], {m: [] for m in models}
    for batching in (True, False):
        proc, url = start_server([f"{m}={src}" for m, (src, _) in models.items()], args.max_batch if batching else 1,
                                 args.threads, args.worker)
        try:
            for m, (src, imgs) in models.items():
                # the ceiling, measured next to the rows it bounds (the server idles meanwhile)
                before = raw(src, imgs, args.max_batch, 200)
                load(url, m, imgs, 4, 1)  # warm-up
                measured = [(c, load(url, m, imgs, c, args.seconds)) for c in (1, 8, 32)]
                after = raw(src, imgs, args.max_batch, 200)  # a VM's speed drifts: the rows against both
                ceilings[m] += [before, after]
                near = (before["batched_rps"] + after["batched_rps"]) / 2
                rows += [(m, batching, c, {**r, "of_raw": r["rps"] / near}) for c, r in measured]
        finally:
            proc.terminate()
            proc.wait(30)
    ceilings = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in ceilings.items()}
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    client = "wrk -t1" if shutil.which("wrk") else "Python threads (no wrk)"
    print(f"dlbox serve on loopback, {cpu_model()}, {time.strftime('%Y-%m-%d')}; {args.seconds:g} s per row from {client}, "
          f"--worker {args.worker}, --max-batch {args.max_batch} (on) or 1 (off), --threads {args.threads}, image bytes to "
          f"/v1/models/NAME/predict; load average {load_avg:.1f} at the end\n")
    print("| model | batching | concurrency | req/s | p50 ms | p99 ms | mean batch | % of raw batched | errors | health max ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m, batching, c, r in rows:
        print(f"| {m} | {'on' if batching else 'off'} | {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['mean_batch']:.2f} | {100 * r['of_raw']:.0f}% | {r['errors']} | "
              f"{r['health_max_ms']:.1f} |")
    print("\nraw runtime (in-process decode + predict, the ceiling):\n")
    print(f"| model | single p50 ms | single img/s | batched img/s (batch {args.max_batch}) |")
    print("|---|---|---|---|")
    for m, r in ceilings.items():
        print(f"| {m} | {r['p50_ms']:.2f} | {r['single_rps']:.0f} | {r['batched_rps']:.0f} |")


if __name__ == "__main__":
    main()
