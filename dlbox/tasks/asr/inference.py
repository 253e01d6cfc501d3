"""A trained recogniser for inference, from a run directory, a checkpoint or our ONNX export (+ tokens.txt):
``log_probs(fbank)`` -> (T', V) per utterance, the same for PyTorch and onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.errors import UserError
from dlbox.tasks.asr.data import Vocab
from dlbox.tasks.asr.model import MIN_FRAMES, SUBSAMPLING


@dataclass
class Recognizer:
    vocab: Vocab
    model: Any = None  # CtcModel (PyTorch)
    session: Any = None  # onnxruntime.InferenceSession
    source: str = ""
    subsampling: int = SUBSAMPLING
    cmvn_mode: str = "global"

    @property
    def backend(self) -> str:
        return "onnxruntime" if self.session is not None else "pytorch"

    def log_probs(self, feats: np.ndarray) -> np.ndarray:
        """(T, 80) raw fbank -> (T', V) log-probabilities."""
        if len(feats) < MIN_FRAMES:
            raise UserError(f"the audio is too short ({len(feats) * 10} ms)", f"the model needs at least {MIN_FRAMES * 10} ms")
        x = feats[None].astype(np.float32)
        x_lens = np.array([len(feats)], dtype=np.int64)
        if self.session is not None:
            lp, lens = self.session.run(["log_probs", "log_probs_lens"], {"x": x, "x_lens": x_lens})
            return lp[0, : int(lens[0])]
        import torch

        with torch.no_grad():
            lp, lens = self.model(torch.from_numpy(x), torch.from_numpy(x_lens))
        return lp[0, : int(lens[0])].numpy()


def load_recognizer(source: str | Path, threads: int | None = None) -> Recognizer:
    """A run directory (best.pt), a checkpoint file, or an .onnx export with tokens.txt beside it."""
    p = Path(source)
    if p.suffix == ".onnx":
        return _load_onnx(p, threads)
    import torch

    from dlbox.engine import checkpoint
    from dlbox.tasks.asr.model import build

    ckpt = checkpoint.resolve(p, "best.pt") if p.is_dir() else checkpoint.resolve(p)
    state = checkpoint.load(ckpt)
    ts = state.get("task_state") or {}
    if state.get("task") != "asr" or "tokens" not in ts:
        raise UserError(f"{source} is not a dlbox asr run", "pass the run directory of `dlbox asr train`, or an .onnx export")
    if threads:
        torch.set_num_threads(threads)
    model = build(ts["hparams"])
    model.load_state_dict(state["model"])
    model.eval()
    return Recognizer(Vocab(ts["tokens"]), model=model, source=str(ckpt), cmvn_mode=ts.get("cmvn_mode", "global"))


def _load_onnx(p: Path, threads: int | None) -> Recognizer:
    import onnxruntime as ort

    if not p.is_file():
        raise UserError(f"{p} does not exist", "export one with `dlbox asr export RUN --format onnx`")
    tokens = p.with_name("tokens.txt")
    if not tokens.is_file():
        raise UserError(f"{p} has no tokens.txt beside it", "keep the tokens.txt that `dlbox asr export` wrote next to the model")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    return Recognizer(Vocab.load(tokens), session=sess, source=str(p), subsampling=int(meta.get("subsampling_factor", SUBSAMPLING)))
