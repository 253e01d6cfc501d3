"""Load on `dlbox serve` over loopback: requests/s, p50/p99 latency and mean batch size at concurrency 1, 8 and 32,
with dynamic batching on and off, against the raw runtime (the same predictor called in-process: the ceiling).

    python benchmarks/serve_load.py [--digits RUN] [--det RUN] [--requests 400] [--max-batch 16]

Without runs it trains the serve tests' models first (a digits classifier, a tinydet; about 30 s). The server runs
in its own process (`dlbox serve ... --json`); the clients are threads of this one, each with a keep-alive
connection, sending an image's bytes to /v1/models/NAME/predict. Raw: decode + predict in-process, one image at
a time (latency) and in batches of --max-batch (throughput), measured next to the server's rows. Server and raw
runtime use --threads intra-op threads (default 1: on 2 cores the clients need the other one, and 2 threads
contending with other work made PyTorch's single-image calls 20x slower here). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
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


def images(folder: Path, n: int = 32) -> list[bytes]:
    files = sorted(p for p in folder.rglob("*.png"))
    step = max(1, len(files) // n)
    return [f.read_bytes() for f in files[::step][:n]]


def raw(source: str, payloads: list[bytes], batch: int, repeats: int) -> dict[str, float]:
    """The ceiling: the same predictor in-process, decode + predict, single and batched."""
    from dlbox.serve.models import load, resolve

    p = load(resolve([source])[0])
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


def start_server(models: list[str], max_batch: int, threads: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DLBOX_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "dlbox", "serve", *models, "--port", "0", "--json",
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


def load(url: str, model: str, payloads: list[bytes], concurrency: int, total: int) -> dict[str, float]:
    host, port = url.split("//")[1].split(":")
    path = f"/v1/models/{model}/predict"
    lat: list[float] = []
    lock, counter = threading.Lock(), [0]
    errors = [0]

    def client(k: int):
        conn = http.client.HTTPConnection(host, int(port))
        while True:
            with lock:
                i = counter[0]
                counter[0] += 1
            if i >= total:
                return
            t = time.perf_counter()
            conn.request("POST", path, body=payloads[i % len(payloads)], headers={"content-type": "image/png"})
            r = conn.getresponse()
            r.read()
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                errors[0] += r.status != 200

    # warm-up, then the measured run
    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    count0, exec0 = metric(url, "nv_inference_count_total", model), metric(url, "nv_inference_exec_count_total", model)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    count, execs = metric(url, "nv_inference_count_total", model) - count0, metric(url, "nv_inference_exec_count_total", model) - exec0
    lat.sort()
    return {"rps": total / wall, "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "mean_batch": count / max(execs, 1), "errors": errors[0]}  # fmt: skip


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
    ap.add_argument("--requests", type=int, default=400, help="requests per measurement (default: 400)")
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
                                 args.threads)
        try:
            for m, (src, imgs) in models.items():
                # the ceiling, measured next to the rows it bounds (the server idles meanwhile)
                ceilings[m].append(raw(src, imgs, args.max_batch, 100))
                load(url, m, imgs, 4, 40)  # warm-up
                for c in (1, 8, 32):
                    rows.append((m, batching, c, load(url, m, imgs, c, args.requests)))
        finally:
            proc.terminate()
            proc.wait(30)
    ceilings = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in ceilings.items()}
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"dlbox serve on loopback, {cpu_model()}, {time.strftime('%Y-%m-%d')}; {args.requests} requests per row, "
          f"--max-batch {args.max_batch} (on) or 1 (off), --threads {args.threads}, image bytes to /v1/models/NAME/predict; "
          f"load average {load_avg:.1f} at the end\n")
    print("| model | batching | concurrency | req/s | p50 ms | p99 ms | mean batch | % of raw batched | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, batching, c, r in rows:
        print(f"| {m} | {'on' if batching else 'off'} | {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['mean_batch']:.2f} | {100 * r['rps'] / ceilings[m]['batched_rps']:.0f}% | {r['errors']} |")
    print("\nraw runtime (in-process decode + predict, the ceiling):\n")
    print(f"| model | single p50 ms | single img/s | batched img/s (batch {args.max_batch}) |")
    print("|---|---|---|---|")
    for m, r in ceilings.items():
        print(f"| {m} | {r['p50_ms']:.2f} | {r['single_rps']:.0f} | {r['batched_rps']:.0f} |")


if __name__ == "__main__":
    main()
