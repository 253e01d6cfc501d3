"""The saved fast path: the fastest correct path on this machine, chosen by `dlbox bench --auto` (which
measures: dlbox.bench.auto) and read and applied here for the tasks' ``--fast``.

Every path of the suite is first checked against fp32 eager PyTorch on a fixed batch of a fixed-seed model
(see ``dlbox.runtime.parity``); only those that pass are timed. The fastest for inference and the fastest
PyTorch path for training (exported graphs do not train) are saved in ``$DLBOX_HOME/fastpath.json``
(default ``~/.cache/dlbox``), keyed by model and device.

How a task offers ``--fast``::

    from dlbox.runtime import fastpath

    choice = fastpath.load("resnet50", device)          # None: `dlbox bench --auto` was not run here
    if choice:                                           # inference (predict, evaluate)
        predict = fastpath.apply(model, choice, example=batch[:1], calibration=real_batches)
        logits = predict(images)                         # (N, classes) float32 tensor on the CPU or device
    if choice and choice["train"]:                       # training through the engine
        overrides = fastpath.engine_options(choice)      # {"precision": "bf16", "channels_last": True}
        model = fastpath.apply(model, choice, mode="train")  # compiled when the choice says so
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write_text
from dlbox.engine.device import autocast
from dlbox.runtime.paths import INPUT, OUTPUT, PathSpec, Workspace, _compile, openvino_compiled, ort_session

VERSION = 1


def home() -> Path:
    return Path(os.environ.get("DLBOX_HOME") or Path.home() / ".cache" / "dlbox").expanduser()


def store_path() -> Path:
    return home() / "fastpath.json"


def device_key(device: str | torch.device) -> str:
    """'cpu:<CPU model>' or 'cuda:<GPU name>': a choice made on one machine is not reused on another."""
    from dlbox.runtime import hardware

    device = torch.device(device) if isinstance(device, str) else device
    if device.type == "cuda":
        return f"cuda:{hardware.gpu_name(device)}"
    return f"cpu:{hardware.cpu_info().model}"


def _read() -> dict[str, Any]:
    path = store_path()
    if not path.exists():
        return {"version": VERSION, "entries": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise ValueError("no 'entries' mapping")
    except (ValueError, OSError) as e:
        raise UserError(f"{path} is not a dlbox fast-path file ({e})",
                        "delete it and run `dlbox bench --auto` again") from None  # fmt: skip
    return data


def save(entry: dict[str, Any]) -> Path:
    data = _read()
    data["entries"][f"{entry['model']}@{entry['device_key']}"] = entry
    atomic_write_text(store_path(), json.dumps(data, indent=2) + "\n")
    return store_path()


def load(model_name: str, device: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The saved choice for ``model_name`` on this device, or None when `dlbox bench --auto` has not chosen.

    The dict holds ``infer`` and ``train`` (each a path: backend, precision, channels_last, compile, with the
    measured images_per_sec), plus the batch size, image size, date and software versions of the choice."""
    return _read()["entries"].get(f"{model_name}@{device_key(device)}")


def require(model_name: str, device: str | torch.device, mode: str) -> dict[str, Any]:
    """``load``, for a task's ``--fast``: the saved choice with a ``mode`` ("infer" or "train") path, else a
    one-line user error saying which `dlbox bench --auto` run to do first."""
    choice = load(model_name, device)
    where = f"{model_name} on this {'GPU' if torch.device(device).type == 'cuda' else 'CPU'}"
    if choice is None:
        raise UserError(f"--fast: no fast path is saved for {where}",
                        f"run `dlbox bench --auto --model {model_name}` first")  # fmt: skip
    if not choice.get(mode):
        what = "inference" if mode == "infer" else "training"
        raise UserError(f"--fast: the fast path saved for {where} has no {what} choice",
                        f"run `dlbox bench --auto --model {model_name} --mode both` first")  # fmt: skip
    return choice


def describe(choice: dict[str, Any], mode: str) -> str:
    """'bf16 channels_last eager (saved by `dlbox bench --auto` on DATE: 812 img/s at batch 32)' for log lines."""
    sub = choice[mode]
    label = sub.get("path") or PathSpec.from_dict(sub).label
    facts = [f"{sub['images_per_sec']} img/s" if sub.get("images_per_sec") else None,
             f"at batch {choice['batch_size']}" if choice.get("batch_size") else None]  # fmt: skip
    when = f" on {choice['date'][:10]}" if choice.get("date") else ""
    measured = " ".join(f for f in facts if f)
    return f"{label} (saved by `dlbox bench --auto`{when}{': ' + measured if measured else ''})"


def _path(choice: dict[str, Any], mode: str) -> PathSpec:
    sub = choice.get(mode, choice) if mode in choice else choice
    if sub is None:
        raise UserError(f"the saved fast path has no {mode} choice", "run `dlbox bench --auto --mode both`")
    return PathSpec.from_dict(sub).validate()


def engine_options(choice: dict[str, Any]) -> dict[str, Any]:
    """The engine options (EngineConfig fields) that the training choice sets."""
    spec = _path(choice, "train")
    return {"precision": spec.precision, "channels_last": spec.channels_last}


def apply(
    model: nn.Module,
    choice: dict[str, Any],
    mode: str = "infer",
    *,
    example: torch.Tensor | None = None,
    calibration: Iterable[np.ndarray] | None = None,
    threads: int | None = None,
) -> Callable:
    """Make ``model`` run the chosen path; ``choice`` is what ``load`` returned (or one path dict of it).

    mode "infer": returns ``predict(x) -> logits`` (x: (N, 3, H, W) float tensor; logits float32, on x's device
    for PyTorch paths, on the CPU for onnxruntime/openvino). Exported paths need ``example`` (one input batch,
    for the export's shapes) and int8 takes ``calibration``: batches of real, preprocessed images as numpy
    arrays, which accuracy depends on (synthetic ones are used otherwise).
    mode "train": returns the module to train (channels_last, compiled if chosen); the autocast precision
    comes from ``engine_options(choice)``.
    """
    spec = _path(choice, mode)
    fmt = torch.channels_last if spec.channels_last else torch.contiguous_format
    if mode == "train":
        if not spec.trains:
            raise UserError(f"{spec.label} does not train", "use the saved 'train' choice")
        model = model.to(memory_format=fmt)
        return _compile(model, freeze=False) if spec.compile else model
    if spec.backend == "torch":
        model = model.eval().to(memory_format=fmt)
        fn = _compile(model, freeze=True) if spec.compile else model

        def predict_torch(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), autocast(x.device, spec.precision):
                return fn(x.contiguous(memory_format=fmt)).float()

        return predict_torch
    if example is None:
        raise UserError(f"{spec.label} runs an exported graph and needs an example input batch",
                        "pass example=<a (N, 3, H, W) tensor> to fastpath.apply")  # fmt: skip
    from dlbox.engine.device import physical_cores

    threads = threads or physical_cores()
    workspace = Workspace()
    path = (workspace.int8("model", model, example, calibration) if spec.precision == "int8"
            else workspace.onnx("model", model, example))  # fmt: skip
    if spec.backend == "onnxruntime":
        session = ort_session(path, threads, 1)

        def predict_ort(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run([OUTPUT], {INPUT: x.detach().cpu().numpy()})[0])

        predict_ort.workspace = workspace  # type: ignore[attr-defined]  # keeps the files while in use
        return predict_ort
    compiled = openvino_compiled(path, spec.precision, threads, None)
    request, out = compiled.create_infer_request(), compiled.output(0)

    def predict_ov(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.array(request.infer({0: x.detach().cpu().numpy()})[out], dtype=np.float32))

    predict_ov.workspace = workspace  # type: ignore[attr-defined]
    return predict_ov
