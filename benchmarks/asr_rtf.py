"""Real-time factor of the Mandarin CTC model: PyTorch, our ONNX export on onnxruntime, and on sherpa-onnx.

    python benchmarks/asr_rtf.py [--run RUN_DIR] [--data DATA_DIR] [--threads 2] [--repeats 3]

RTF = processing seconds / audio seconds for one utterance at a time (one stream): fbank + network + greedy
decoding (sherpa-onnx: its own fbank and decoder), audio already in memory; the median of ``--repeats``
passes over the test set. Without --run it generates the espeak-ng corpus and trains the test suite's model
(12 epochs, about a minute) first. Also checks that the three give the same transcripts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlbox.tasks.asr import audio  # noqa: E402
from dlbox.tasks.asr.data import read_data_dir  # noqa: E402


def build_run(work: Path, threads: int) -> tuple[str, str]:
    from dlbox.config import from_dict
    from dlbox.tasks.asr.synth import make_corpus
    from dlbox.tasks.asr.train import AsrConfig, train

    make_corpus(work / "synth", n_train=240, n_test=40, seed=0)
    cfg = from_dict(AsrConfig, {"data": str(work / "synth/train"), "dev": str(work / "synth/test"), "epochs": 12,
                                "batch_size": 8, "lr": 3e-3, "device": "cpu", "threads": 1,
                                "runs_dir": str(work / "runs")})  # fmt: skip
    return train(cfg)["run_dir"], str(work / "synth/test")


def time_backend(rec, waves, repeats: int) -> tuple[float, list[str]]:
    from dlbox.tasks.asr.transcribe import transcribe_wave

    seconds = sum(len(w) for w in waves) / audio.SAMPLE_RATE
    texts, runs = [], []
    transcribe_wave(rec, waves[0])  # warm-up
    for _ in range(repeats):
        t0 = time.perf_counter()
        texts = [transcribe_wave(rec, w)["text"] for w in waves]
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) / seconds, texts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a dlbox asr run directory (default: train one on the generated corpus)")
    p.add_argument("--data", help="data directory to transcribe (default: the generated test set)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    import torch

    from dlbox.tasks.asr.export import export
    from dlbox.tasks.asr.inference import load_recognizer
    from dlbox.tasks.asr.transcribe import SherpaRecognizer

    work = Path(tempfile.mkdtemp(prefix="dlbox-asr-rtf-"))
    run, data = (a.run, a.data) if a.run else build_run(work, a.threads)
    if a.data:
        data = a.data
    exp = export(run)
    waves = [audio.load(u.wav, u.start, u.end) for u in read_data_dir(data).utts]
    torch.set_num_threads(a.threads)
    backends = {
        "pytorch": load_recognizer(run, a.threads),
        "onnxruntime": load_recognizer(exp["file"], a.threads),
        "sherpa-onnx": SherpaRecognizer("wenet-ctc", exp["file"], exp["tokens"], a.threads),
    }
    rows, ref = {}, None
    for name, rec in backends.items():
        rtf, texts = time_backend(rec, waves, a.repeats)
        ref = ref or texts
        rows[name] = {"rtf": round(rtf, 5), "x_realtime": round(1 / rtf, 1), "same_transcripts": texts == ref}
    result = {"utterances": len(waves), "audio_seconds": round(sum(len(w) for w in waves) / audio.SAMPLE_RATE, 1),
              "threads": a.threads, "run": run, "backends": rows}  # fmt: skip
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['utterances']} utterances, {result['audio_seconds']} s of audio, one stream, {a.threads} threads")
        for name, r in rows.items():
            print(f"  {name:<12} RTF {r['rtf']:.4f}  ({r['x_realtime']}x real time)  same transcripts: {r['same_transcripts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
