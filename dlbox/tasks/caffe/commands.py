"""`dlbox caffe import|train|convert-imageset`: Caffe models, solvers and databases without Caffe."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.tasks.caffe import config


def import_model(c: config.ImportArgs) -> dict:
    from dlbox.convert.caffe.importer import import_model, parse_shapes

    return import_model(c.prototxt, c.weights, c.out, parse_shapes(c.input_shape))


def render_import(r, c: config.ImportArgs) -> str:
    weights = f"{r['weights_loaded']} layers' weights" if c.weights else "no weights (fillers)"
    ins = ", ".join(f"{k} {tuple(v)}" for k, v in r["inputs"].items())
    return (f"wrote {r['file']} ({r['format']}): net {r['net']!r}, {r['layers']} layers, {r['parameters']:,} parameters, "
            f"{weights}\ninputs {ins}; outputs {', '.join(r['outputs'])}\n"
            f"parity with the imported net: max |diff| = {r['max_abs_diff']:.2e}")  # fmt: skip


def render_train(r) -> str:
    test = "  ".join(f"{k} {v:.4f}" for k, v in r["test"].items())
    return (
        f"{'run':<12} {r['run_dir']}\n{'test':<12} {test}\n"
        f"{'iterations':<12} {r['iterations']} (epochs of {r['iterations_per_epoch']} x batch {r['batch_size']}; "
        f"solver max_iter {r['max_iter']}, lr_policy {r['lr_policy']}, {r['type']})\n"
        f"{'data':<12} {'  '.join(f'{k} {v}' for k, v in r['data'].items())}; tested every {r['test_interval']} "
        f"iterations on {r['test_samples']} samples\n"
        f"{'weights':<12} {r['caffemodel']}\n{'time':<12} {r['seconds']:.1f} s ({r['images_per_sec']:.0f} images/s)"
    )  # fmt: skip


def render_imageset(r) -> str:
    shapes = ", ".join("x".join(map(str, s)) for s in r["shapes"]) or "encoded"
    classes = f"; labels {r['classes']}" if r["classes"] else ""
    return f"wrote {r['lmdb']}: {r['records']:,} Datum records ({shapes}){classes}"


COMMANDS = [
    Command("import", "a prototxt (+ caffemodel) as a PyTorch file (.pt) or ONNX, parity-checked",
            "dlbox caffe import deploy.prototxt bvlc_googlenet.caffemodel --out googlenet.onnx",
            config.ImportArgs, import_model, render_import),
    Command("convert-imageset", "images (class subfolders or a list file) or the digits into a Caffe LMDB",
            "dlbox caffe convert-imageset digits:train examples/mnist/mnist_train_lmdb",
            config.ConvertImagesetArgs, call("dlbox.tasks.caffe.imageset:convert_imageset", list_file="list"),
            render_imageset,
            description="Like Caffe's convert_imageset: one Datum per image (raw pixels, BGR for colour, or the file "
                        "with --encoded), keys %08d_<path>, for Data layers with backend: LMDB."),
    Command("train", "run a Caffe solver.prototxt on the dlbox engine (runs, resume, TensorBoard)",
            "dlbox caffe train --solver lenet_solver.prototxt --data data/mnist",
            config.CaffeTrainConfig, lazy("dlbox.tasks.caffe.train:train"), render_train, train="caffe solver"),
]  # fmt: skip


register = group("caffe", "Caffe models and solvers without Caffe: import to PyTorch/ONNX, train a solver, write LMDBs",
                 "dlbox caffe import deploy.prototxt weights.caffemodel --out model.onnx", COMMANDS)  # fmt: skip
