"""Loading an embedder (run, checkpoint, weights file, hub:NAME, ONNX export) and turning images into embeddings.

The distance threshold that goes with a model: RUN/threshold.json (written by `dlbox face evaluate`), else the
one training chose on its held-out identities, else WEIGHTS.threshold.json beside a weights file, else the
usual value for FaceNet's published weights (1.1) or 1.0. ``--threshold`` overrides all of them.

``predictor()`` serves an embedder (``dlbox serve``): a photo -> its faces (MTCNN boxes, as `face detect --json`)
with their embeddings; two photos with ``pair`` -> same person or not (as `face compare`).
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

from dlbox.base.errors import UserError
from dlbox.models.weights import WeightsSource, read_checkpoint, read_state, resolve_weights
from dlbox.runtime.exported import RunsExported
from dlbox.runtime.inputs import decode_image, default_name, int_option, no_more_options, square_batch
from dlbox.runtime.predictor import Sample, TensorSpec
from dlbox.tasks.face import models

FACENET_THRESHOLD = 1.1  # unit-embedding distance commonly used with facenet-pytorch's published weights


@dataclass
class Embedder(RunsExported):
    arch: str
    img_size: int
    threshold: float
    source: str
    model: nn.Module | None = None
    exported: Any = None  # dlbox.runtime.exported.Exported of a dlbox export
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
        if self.exported is not None:  # a static-batch export is fed its batch size at a time
            name, out = self.exported.inputs[0].name, self.exported.outputs[0].name
            arr = x.numpy().astype(np.float32)
            return np.concatenate([self.exported.run({name: arr[i : i + batch]})[out] for i in range(0, len(arr), batch)])
        return np.concatenate([self.model(x[i : i + batch]).float().numpy() for i in range(0, len(x), batch)])

    def embed_images(self, crops: list[Image.Image], flip: bool = False) -> np.ndarray:
        from dlbox.tasks.face.data import face_transform

        if not crops:
            return np.zeros((0, 0), np.float32)
        tf = face_transform(self.img_size)
        return self.embed_tensor(torch.stack([tf(c.convert("RGB")) for c in crops]), flip=flip)


def weights_state(spec: str) -> dict[str, torch.Tensor]:
    """An embedder state dict from PATH (state dict, dlbox run/checkpoint) or hub:NAME."""
    src = resolve_weights(spec)
    if src.kind == "run":
        return _run_state(src)[0]
    return _strip(models.plain_state(read_state(src)[0]))


def _strip(state: dict) -> dict:
    """A dlbox face checkpoint holds FaceModel(embedder, head): keep the embedder."""
    if any(k.startswith("embedder.") for k in state):
        return {k[len("embedder.") :]: v for k, v in state.items() if k.startswith("embedder.")}
    return state


def _run_state(run: WeightsSource) -> tuple[dict, dict, Path]:
    ck = read_checkpoint(run)
    return _strip(ck["model"]), ck.get("task_state") or {}, run.checkpoint_file("best.pt")


def load_embedder(source: str, model: str | None = None, threshold: float | None = None) -> Embedder:
    """``source``: a face run directory, one of its checkpoints, an .onnx export, weights PATH or hub:NAME
    (``model`` names the architecture of plain weights; default inception_resnet_v1)."""
    from dlbox.engine import checkpoint

    src = resolve_weights(str(source))
    path = src.path
    if src.kind == "export":
        return _load_export(path, threshold)
    task_state: dict = {}
    threshold_file: Path
    if src.kind in ("run", "checkpoint"):
        if src.kind == "run":
            state, task_state, _ = _run_state(src)
            run = path
        else:
            ck = read_checkpoint(src)
            state, task_state, run = _strip(ck["model"]), ck.get("task_state") or {}, checkpoint.run_dir_of(path)
        if "arch" not in task_state:
            raise UserError(f"{source} is not a face run", "pass a run of `dlbox face train`, or weights with --model")
        arch, img_size = task_state["arch"], task_state["img_size"]
        net = models.build(arch, task_state.get("embedding_dim"), task_state.get("width", 1.0))
        threshold_file = run / "threshold.json"
        default = task_state.get("threshold") or 1.0
    else:
        arch = model or "inception_resnet_v1"
        state = models.plain_state(read_state(src)[0])
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


def _read_threshold(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text())["threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_export(path: Path, threshold: float | None) -> Embedder:
    """An export through the one loader (also the ``dlbox_face`` metadata of exports before schema 1)."""
    from dlbox.runtime.exported import load_exported

    ex = load_exported(path, task="face")
    stored = _read_threshold(Path(str(path) + ".threshold.json"))
    chosen = threshold if threshold is not None else (stored if stored is not None else ex.meta["extra"]["threshold"])
    return Embedder(ex.meta["extra"].get("arch") or ex.meta["model_name"], int(ex.meta["inputs"][0]["size"]),
                    float(chosen), str(path), exported=ex, threshold_file=str(path) + ".threshold.json")  # fmt: skip


def export_meta(emb: Embedder, dynamic_batch: bool = True) -> dict[str, Any]:
    """The export metadata (docs/export.md) of an embedder: an export's own, else what exporting would write."""
    from dlbox.runtime.export import ExportMeta, image_input, weights_sha256

    if emb.exported is not None:
        return emb.exported.meta
    meta = ExportMeta(
        "face", emb.arch, [image_input("faces", emb.img_size, [0.5] * 3, [128 / 255] * 3, -1 if dynamic_batch else 1)],
        dynamic_batch=dynamic_batch,
        preprocessing={"crop": "an aligned face crop of size x size (MTCNN + alignment, see `dlbox face detect`)",
                       "normalise": "(pixel - 127.5) / 128", "channels": "RGB"},
        extra={"arch": emb.arch, "threshold": emb.threshold, "source": emb.source,
               "output": "unit-length embeddings; same person when the L2 distance < threshold"},
        weights_sha256=weights_sha256(emb.model) if emb.model is not None else "",
    )  # fmt: skip
    return meta.to_dict()


def default_align(embedder) -> str:
    """FaceNet's published weights saw facenet-pytorch's box crops; our runs see the template for their size."""
    return "box160" if embedder.arch == "inception_resnet_v1" else "arcface112"


OPTIONS = "aligned (the photo is a face crop), flip (mean with the mirror image), pair (two photos: same person?)"


def _flag(options: dict[str, Any], name: str) -> bool:
    v = options.pop(name, False)
    if isinstance(v, str):
        if v.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise UserError(f"{name} must be true or false, got {v!r}")
        return v.lower() in ("true", "1", "yes")
    return bool(v)


class FacePredictor:
    """Per photo ``{"faces": [{"box", "score", "landmarks", "embedding"}], "note"?}`` (``face detect --json``'s
    entry with each face's embedding, rounded to 6 decimals); with ``aligned`` the photo is one face crop and
    the entry is ``{"faces": [{"embedding"}]}``. With ``pair`` (exactly two photos) each entry also has
    ``"pair": {"distance", "same", "threshold"}`` for the largest faces, as `face compare` decides."""

    task = "face"

    def __init__(self, emb: Embedder, name: str, min_face_size: int = 20, align: str | None = None):
        self.emb, self.name = emb, name
        self.align = align or default_align(emb)
        self.min_face_size = min_face_size
        self._detector = None
        self.meta = {**export_meta(emb), "backend": emb.backend}
        s = emb.img_size
        self.inputs = [TensorSpec("faces", "FP32", (-1, 3, s, s))]
        self.outputs = [TensorSpec("embeddings", "FP32", (-1, -1))]

    @property
    def detector(self):
        if self._detector is None:
            from dlbox.tasks.face.mtcnn import MTCNN

            self._detector = MTCNN(min_face_size=self.min_face_size)
        return self._detector

    def decode(self, payload: bytes, content_type: str | None = None, **options: Any) -> Sample:
        no_more_options(dict(options), "no decode options")
        im = decode_image(payload)
        return Sample(im, {"width": im.width, "height": im.height})

    def predict(self, samples: list[Sample], **options: Any) -> list[dict[str, Any]]:
        from dlbox.tasks.face.align import align as align_face
        from dlbox.tasks.face.data import largest

        aligned, flip, pair = _flag(options, "aligned"), _flag(options, "flip"), _flag(options, "pair")
        no_more_options(options, OPTIONS)
        if pair and len(samples) != 2:
            raise UserError(f"pair compares two photos, got {len(samples)}", "send exactly two images")
        crops, owner, entries, faces_of = [], [], [], []
        for k, s in enumerate(samples):
            entry: dict[str, Any] = {"file": s.info["file"]} if "file" in s.info else {}
            if aligned:
                faces = [None]
                crops.append(s.data)
                owner.append(k)
            else:
                faces = self.detector.detect(s.data)
                for f in faces:
                    crops.append(align_face(s.data, f, self.align))
                    owner.append(k)
            entry["faces"] = [{} if f is None else f.as_dict() for f in faces]
            if not faces:
                entry["note"] = f"no face found (smallest face searched: {self.detector.min_face_size} px)"
            entries.append(entry)
            faces_of.append(faces)
        vecs = self.emb.embed_images(crops, flip=flip) if crops else np.zeros((0, 0), np.float32)
        seen = [0] * len(samples)
        for k, v in zip(owner, vecs, strict=True):
            entries[k]["faces"][seen[k]]["embedding"] = [round(float(x), 6) for x in v]
            seen[k] += 1
        if pair:
            best = []
            for k, faces in enumerate(faces_of):
                if not faces:
                    raise UserError(f"no face found in photo {k + 1} of the pair", "send photos with a face in each")
                i = 0 if aligned else faces.index(largest(faces))
                best.append(vecs[owner.index(k) + i])
            d = float(np.linalg.norm(best[0] - best[1]))
            verdict = {"distance": d, "same": bool(d < self.emb.threshold), "threshold": self.emb.threshold}
            for e in entries:
                e["pair"] = verdict
        return entries

    @torch.no_grad()
    def infer(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = square_batch(tensors, "faces", self.emb.img_size, "FP32, (pixel - 127.5) / 128")
        return {"embeddings": self.emb.embed_tensor(torch.from_numpy(x))}


def predictor(source: str | Path, name: str | None = None, model: str | None = None, threshold: float | None = None,
              min_face_size: int = 20) -> FacePredictor:  # fmt: skip
    """A ``dlbox.runtime.predictor.Predictor`` for a run, checkpoint, export, weights or hub:NAME: a photo -> its
    faces (box, score, landmarks, embedding); ``pair=True`` verifies two photos."""
    n = int_option({"min_face_size": min_face_size}, "min_face_size", 20, 1, 10_000)
    return FacePredictor(load_embedder(str(source), model, threshold), name or default_name(source), n)
