"""Loading an embedder (run, checkpoint, weights file, hub:NAME, ONNX export) and turning images into embeddings.

The distance threshold that goes with a model: RUN/threshold.json (written by `dlbox face evaluate`), else the
one training chose on its held-out identities, else WEIGHTS.threshold.json beside a weights file, else the
usual value for FaceNet's published weights (1.1) or 1.0. ``--threshold`` overrides all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from dlbox.errors import UserError
from dlbox.tasks.face import models

FACENET_THRESHOLD = 1.1  # unit-embedding distance commonly used with facenet-pytorch's published weights


@dataclass
class Embedder:
    arch: str
    img_size: int
    threshold: float
    source: str
    model: nn.Module | None = None
    session: Any = None  # onnxruntime.InferenceSession
    threshold_file: str | None = None  # where `evaluate` stores the threshold it chose

    @torch.no_grad()
    def embed_tensor(self, x: torch.Tensor, flip: bool = False) -> np.ndarray:
        """(N, 3, S, S) standardised crops -> (N, D) unit embeddings (flip: the mean with the mirror image)."""
        out = self._run(x)
        if flip:
            out = out + self._run(torch.flip(x, dims=[3]))
            out = out / np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)

    def _run(self, x: torch.Tensor, batch: int = 64) -> np.ndarray:
        if self.session is not None:
            inp = self.session.get_inputs()[0]
            step = inp.shape[0] if isinstance(inp.shape[0], int) else batch
            arr = x.numpy().astype(np.float32)
            return np.concatenate([self.session.run(None, {inp.name: arr[i : i + step]})[0] for i in range(0, len(arr), step)])
        return np.concatenate([self.model(x[i : i + batch]).float().numpy() for i in range(0, len(x), batch)])

    def embed_images(self, crops: list[Image.Image], flip: bool = False) -> np.ndarray:
        from dlbox.tasks.face.data import face_transform

        if not crops:
            return np.zeros((0, 0), np.float32)
        tf = face_transform(self.img_size)
        return self.embed_tensor(torch.stack([tf(c.convert("RGB")) for c in crops]), flip=flip)


def weights_state(spec: str) -> dict[str, torch.Tensor]:
    """An embedder state dict from PATH (state dict, dlbox run/checkpoint) or hub:NAME."""
    path = _weights_path(spec)
    if path.is_dir():
        return _run_state(path)[0]
    state = models.read_state_dict(path)
    return _strip(state)


def _strip(state: dict) -> dict:
    """A dlbox face checkpoint holds FaceModel(embedder, head): keep the embedder."""
    if any(k.startswith("embedder.") for k in state):
        return {k[len("embedder.") :]: v for k, v in state.items() if k.startswith("embedder.")}
    return state


def _weights_path(spec: str) -> Path:
    if spec.startswith("hub:"):
        from dlbox.hub.weights import resolve_weights

        return Path(resolve_weights(spec))
    p = Path(spec)
    if not p.exists():
        raise UserError(f"{spec!r} does not exist", "pass a run directory, a checkpoint, a weights file, an .onnx file or hub:NAME")
    return p


def _run_state(run: Path) -> tuple[dict, dict, Path]:
    from dlbox.engine import checkpoint

    ckpt = run / "checkpoints" / "best.pt"
    if not ckpt.is_file():
        ckpt = checkpoint.resolve(run)
    state = checkpoint.load(ckpt)
    return _strip(state["model"]), state.get("task_state") or {}, ckpt


def load_embedder(source: str, model: str | None = None, threshold: float | None = None) -> Embedder:
    """``source``: a face run directory, one of its checkpoints, an .onnx export, weights PATH or hub:NAME
    (``model`` names the architecture of plain weights; default inception_resnet_v1)."""
    from dlbox.engine import checkpoint

    path = _weights_path(str(source))
    if path.suffix == ".onnx":
        return _load_onnx(path, threshold)
    task_state: dict = {}
    threshold_file: Path
    if path.is_dir() or _is_checkpoint(path):
        if path.is_dir():
            state, task_state, _ = _run_state(path)
            run = path
        else:
            ck = checkpoint.load(path)
            state, task_state, run = _strip(ck["model"]), ck.get("task_state") or {}, checkpoint.run_dir_of(path)
        if "arch" not in task_state:
            raise UserError(f"{source} is not a face run", "pass a run of `dlbox face train`, or weights with --model")
        arch, img_size = task_state["arch"], task_state["img_size"]
        net = models.build(arch, task_state.get("embedding_dim"), task_state.get("width", 1.0))
        threshold_file = run / "threshold.json"
        default = task_state.get("threshold") or 1.0
    else:
        arch = model or "inception_resnet_v1"
        state = models.read_state_dict(path)
        net = models.build(arch, _embedding_dim(state, arch), _width(state, arch))
        img_size = models.DEFAULT_SIZE[arch]
        threshold_file = Path(str(path) + ".threshold.json")
        default = FACENET_THRESHOLD if arch == "inception_resnet_v1" else 1.0
    models.load_into(net, state, str(source))
    stored = _read_threshold(threshold_file)
    chosen = threshold if threshold is not None else (stored if stored is not None else float(default))
    return Embedder(arch, int(img_size), float(chosen), str(source), model=net.eval(), threshold_file=str(threshold_file))


def _embedding_dim(state: dict, arch: str) -> int | None:
    for key in ("last_bn.weight", "bn.weight"):
        if key in state:
            return int(state[key].shape[0])
    return None


def _width(state: dict, arch: str) -> float:
    """The width multiplier of small-backbone weights, from their first convolution's channels."""
    first = {"tinyface": ("features.0.weight", 16), "mobileface": ("stem.0.0.weight", 64)}.get(arch)
    if first and first[0] in state:
        return int(state[first[0]].shape[0]) / first[1]
    return 1.0


def _is_checkpoint(path: Path) -> bool:
    """A dlbox checkpoint (rather than a plain state dict)? Read with weights_only=True like any outside file."""
    if path.suffix == ".safetensors":
        return False
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False  # read_state_dict reports what is wrong with the file
    return isinstance(state, dict) and state.get("format") == "dlbox.checkpoint"


def _read_threshold(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text())["threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_onnx(path: Path, threshold: float | None) -> Embedder:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise UserError(f"cannot load ONNX model {path}: {str(e).splitlines()[0][:120]}", "export it again") from None
    meta = sess.get_modelmeta().custom_metadata_map
    if "dlbox_face" not in meta:
        raise UserError(f"{path} is not a dlbox face export", "export one with `dlbox face export RUN`")
    info = json.loads(meta["dlbox_face"])
    stored = _read_threshold(Path(str(path) + ".threshold.json"))
    chosen = threshold if threshold is not None else (stored if stored is not None else info["threshold"])
    return Embedder(info["arch"], int(info["img_size"]), float(chosen), str(path), session=sess,
                    threshold_file=str(path) + ".threshold.json")  # fmt: skip
