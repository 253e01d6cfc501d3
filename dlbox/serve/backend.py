"""Which runtime runs each served model (`dlbox serve --backend`): planned before anything binds, applied when
the model loads.

- ``auto`` (default): the fastest verified path `dlbox bench --auto` saved for the model on this machine (the
  choice `dlbox classify predict --fast` runs, dlbox.runtime.fastpath), when one is saved; otherwise an export
  runs in its own runtime (onnxruntime for .onnx) and a run in PyTorch.
- ``pytorch``: the run's PyTorch model (fp32, eager); an export has none, so it is refused.
- ``onnxruntime``: an .onnx export as is; a classification run is exported to ONNX (fp32, dynamic batch) when
  it loads, through the runtime's exporter (parity-checked against PyTorch).
- ``fast``: the saved fast path, or a one-line error naming the `dlbox bench --auto` run to do first.

Classification runs can take every backend. The other tasks run in their loader's runtime (PyTorch for runs,
the export's own runtime for exports): ``auto`` gives it, and naming that same backend is accepted. Word2vec
(gensim) and sherpa-onnx hub models have one runtime and take any ``--backend``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.runtime.exported import is_export

BACKENDS = ("auto", "pytorch", "onnxruntime", "fast")
DEVICE = "cpu"  # dlbox serve runs its models on the CPU
_FORMAT_BACKEND = {".onnx": "onnxruntime", ".xml": "openvino"}
FIXED = ("gensim", "sherpa-onnx")  # word2vec and sherpa-onnx hub models run there whatever --backend says


def own_backend(spec) -> str:
    """The runtime a model's loader runs it in, from its source alone."""
    src = Path(spec.source)
    if is_export(src):
        return _FORMAT_BACKEND.get(src.suffix, "torchscript")
    if spec.task == "text":
        return "gensim"
    if spec.task == "asr" and spec.source.startswith("hub:"):
        return "sherpa-onnx"
    return "pytorch"


def _fast_choice(spec, required: bool) -> dict[str, Any] | None:
    from dlbox.runtime import fastpath

    if not spec.model:  # hub:NAME: no architecture name before it loads
        if required:
            raise UserError(f"--backend fast: {spec.source} names no architecture to look a fast path up for",
                            "serve a run of it, or use --backend auto")  # fmt: skip
        return None
    if required:
        try:
            return fastpath.require(spec.model, DEVICE, "infer")
        except UserError as e:  # its words are those of the tasks' --fast
            raise UserError(e.message.replace("--fast:", "--backend fast:", 1), e.hint) from None
    choice = fastpath.load(spec.model, DEVICE)
    return choice if choice and choice.get("infer") else None


def plan(specs: list, requested: str) -> None:
    """Set each spec's ``backend`` (the runtime: pytorch, onnxruntime, openvino, ...) and, for a fast path,
    ``path`` (its choice): a backend a model cannot take is a UserError, before anything binds."""
    from dlbox.runtime.paths import PathSpec

    if requested not in BACKENDS:
        raise UserError(f"--backend {requested!r} is not one of {', '.join(BACKENDS)}")
    for spec in specs:
        own = own_backend(spec)
        converts = spec.task == "classify" and own == "pytorch"  # a classification run: any path of the runtime
        spec.path = None
        if own in FIXED:  # no other runtime to choose between
            spec.backend = own
            continue
        if requested == "auto":
            spec.path = _fast_choice(spec, False) if converts else None
        elif requested == "fast":
            if not converts:
                raise UserError(f"--backend fast: {spec.name} ({spec.source}) is {_what(spec, own)}, and the saved "
                                "fast paths are those of classification runs",
                                "pass the run directory of a classifier, or use --backend auto")  # fmt: skip
            spec.path = _fast_choice(spec, True)
        elif requested == "onnxruntime" and converts:
            spec.path = {"infer": {**PathSpec("onnxruntime", "fp32").to_dict(), "path": "onnxruntime fp32"}}
        elif requested != own:
            hint = ("pass the run directory it was exported from" if is_export(Path(spec.source))
                    else f"export it first (dlbox {spec.task} export), or use --backend auto")  # fmt: skip
            raise UserError(f"--backend {requested}: {spec.name} ({spec.source}) is {_what(spec, own)}, which runs "
                            f"in {own}", hint)  # fmt: skip
        spec.backend = _engine(spec.path) if spec.path else own


def _what(spec, own: str) -> str:
    return f"a {spec.task} export" if is_export(Path(spec.source)) else f"a {spec.task} model"


def _engine(choice: dict[str, Any]) -> str:
    backend = choice["infer"].get("backend", "torch")
    return "pytorch" if backend == "torch" else backend


def describe(spec) -> str:
    """'pytorch', 'onnxruntime', or 'onnxruntime int8 (fast path saved by `dlbox bench --auto` on ...)'."""
    if not spec.path or "date" not in spec.path:
        return spec.backend
    from dlbox.runtime import fastpath

    return f"fast path {fastpath.describe(spec.path, 'infer')}"


def _parity(clf, run, precision: str) -> dict[str, Any]:
    """The path's logits against the model's fp32 eager ones on a fixed synthetic batch (dlbox.runtime.parity)."""
    import torch

    from dlbox.runtime.parity import TOLERANCE, parity
    from dlbox.runtime.paths import synthetic_images

    x = synthetic_images(4, clf.img_size, torch.Generator().manual_seed(0))
    return parity(clf.logits(x), run(x), TOLERANCE.get(precision, 1e-1))


def apply(spec, predictor, threads: int | None = None):
    """Run a loaded classification predictor through ``spec.path`` (a fastpath choice); others as loaded."""
    if not spec.path:
        predictor.meta["backend"] = predictor.meta.get("backend") or spec.backend
        return predictor
    import torch

    from dlbox.runtime import fastpath
    from dlbox.runtime.paths import PathSpec, Unavailable, check_torch

    clf = predictor.clf
    path = PathSpec.from_dict(spec.path["infer"])
    try:
        if path.backend == "torch":
            check_torch(path, torch.device(DEVICE))
        example = torch.zeros(1, 3, clf.img_size, clf.img_size)  # the input shape; the batch axis stays free
        # int8: calibrated on synthetic batches (a server has no images at load time), as `bench --auto` verified it
        run = fastpath.apply(clf.model, spec.path, "infer", example=example, threads=threads)
    except Unavailable as e:
        raise UserError(f"--backend: the path {path.label} cannot run here ({e})",
                        f"run `dlbox bench --auto --model {clf.model_name}` again, or use --backend pytorch") from None  # fmt: skip
    verdict = _parity(clf, run, path.precision)
    if not verdict["ok"]:
        raise UserError(f"--backend: the path {path.label} of {spec.name} fails its parity check here "
                        f"({verdict['reason']})", "use --backend pytorch")  # fmt: skip
    clf.logits = run  # the Classifier's own preprocessing and labels, this path's logits
    predictor.meta["parity"] = {k: verdict[k] for k in ("max_rel_diff", "tolerance", "top1_same", "images")}
    predictor.meta["backend"] = spec.backend
    predictor.meta["path"] = path.label
    if "date" in spec.path:
        predictor.meta["fast_path"] = fastpath.describe(spec.path, "infer")
    return predictor
