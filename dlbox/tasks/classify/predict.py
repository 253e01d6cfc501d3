"""`dlbox classify predict`: label names with softmax probabilities for images, a folder or a glob."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dlbox.base.errors import UserError
from dlbox.base.progress import bar, log
from dlbox.data.inputs import expand_inputs
from dlbox.tasks.classify.inference import Classifier, load_classifier, top_predictions


def fast_choice(clf: Classifier) -> dict[str, Any]:
    """The inference path `dlbox bench --auto` saved for this model on the CPU (predict runs there)."""
    from dlbox.runtime import fastpath

    if clf.model is None:
        raise UserError(f"--fast runs the PyTorch model of a run or checkpoint, and {clf.source!r} is an ONNX file",
                        "pass the run directory, or drop --fast")  # fmt: skip
    return fastpath.require(clf.model_name, "cpu", "infer")


def _read(files: list[Path], tf) -> tuple[list[torch.Tensor], list[Path], list[dict[str, Any]]]:
    """Preprocessed images, the files they came from, and an error entry for each unreadable file."""
    from PIL import Image, UnidentifiedImageError

    tensors, ok, errors = [], [], []
    for f in files:
        try:
            with Image.open(f) as im:
                tensors.append(tf(im.convert("RGB")))
            ok.append(f)
        except (UnidentifiedImageError, OSError) as e:
            errors.append({"file": str(f), "error": f"unreadable image: {e}"})
    return tensors, ok, errors


def fast_predictor(clf: Classifier, choice: dict[str, Any], files: list[Path], tf,
                   calibration_images: int = 64) -> Callable[[torch.Tensor], torch.Tensor]:  # fmt: skip
    """``x -> logits`` through the saved inference path, for the images in ``files`` (preprocessed by ``tf``).

    int8 paths are calibrated on the images being predicted: up to ``calibration_images`` of them, evenly
    spread over ``files`` (folders come sorted by class, so the first ones would all be of one class) and
    preprocessed exactly as for prediction. Static quantization needs the activation ranges of real images,
    and these are the real images at hand (the benchmark's synthetic calibration suits timing, not accuracy);
    so an image's int8 probabilities can shift slightly with the set of images it is predicted with. If none
    of the sampled files can be read, int8 is skipped and the model runs in eager PyTorch fp32."""
    from dlbox.runtime import fastpath
    from dlbox.runtime.paths import PathSpec, Unavailable, check_torch

    spec = PathSpec.from_dict(choice["infer"])
    example = torch.zeros(1, 3, clf.img_size, clf.img_size)  # exported graphs: the input shape (batch is dynamic)
    calibration = None
    if spec.precision == "int8":
        n = min(calibration_images, len(files))
        sample, _, _ = _read([files[i * len(files) // n] for i in range(n)], tf)
        if not sample:
            log(f"fast path: no readable image to calibrate {spec.label} on, so eager PyTorch fp32 instead")
            return clf.logits
        calibration = [torch.stack(sample).numpy()]  # one (n, 3, H, W) float32 batch
    try:
        if spec.backend == "torch":
            check_torch(spec, torch.device("cpu"))  # compile needs a C++ compiler: say so now, not mid-run
        fn = fastpath.apply(clf.model, choice, "infer", example=example, calibration=calibration)
    except Unavailable as e:
        raise UserError(f"--fast: the saved path {spec.label} cannot run here ({e})",
                        f"run `dlbox bench --auto --model {clf.model_name}` again, or drop --fast") from None  # fmt: skip
    log(f"fast path: {fastpath.describe(choice, 'infer')}")
    return fn


def predict(source: str, inputs: list[str], topk: int = 5, model_name: str | None = None, batch_size: int = 32,
            fast: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """For each image: ``{"file", "predictions": [{"label", "prob"}, ...]}`` (top ``topk``, softmax).

    ``fast``: run the inference path `dlbox bench --auto` saved for this model (see ``fast_predictor``)."""
    clf = load_classifier(source, model_name)
    choice = fast_choice(clf) if fast else None  # a missing choice fails before any image is read
    tf = clf.transform()
    files = expand_inputs(inputs)
    run = fast_predictor(clf, choice, files, tf) if choice else clf.logits
    results: list[dict[str, Any]] = []
    with bar(len(files), "predict", unit="img") as pbar:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            tensors, ok, errors = _read(chunk, tf)
            results += errors
            if tensors:
                preds = top_predictions(clf.classes, run(torch.stack(tensors)), topk)
                results += [{"file": str(f), "predictions": p} for f, p in zip(ok, preds, strict=True)]
            pbar.update(len(chunk))
    return results


def render_table(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        if "error" in r:
            lines.append(f"{r['file']}: {r['error']}")
            continue
        preds = "  ".join(f"{p['label']} {100 * p['prob']:.1f}%" for p in r["predictions"])
        lines.append(f"{r['file']}: {preds}")
    return "\n".join(lines)


def render_csv(results: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "rank", "label", "prob"])
    for r in results:
        for rank, p in enumerate(r.get("predictions", []), 1):
            w.writerow([r["file"], rank, p["label"], p["prob"]])
    return buf.getvalue().rstrip("\n")
