"""The options of `dlbox caffe train` (kept free of torch so the CLI can register them without importing it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dlbox.base.errors import UserError
from dlbox.config import REQUIRED, opt, positional
from dlbox.engine.config import EngineConfig


@dataclass
class CaffeTrainConfig(EngineConfig):
    solver: str | None = opt(None, "a Caffe solver.prototxt (its `net:` is read next to it or from the current directory)")
    data: str | None = opt(None, "a folder holding the Data layers' LMDB sources (found by their last path part), "
                           "or MNIST IDX files to read instead of digits:train/test (default: the sources as "
                           "given, from the current directory or next to the net's prototxt)")
    max_iter: int | None = opt(None, "iterations to train, exactly (default: the solver's max_iter; with --resume, "
                               "a larger N continues the run)", ge=1, le=10**9)
    epochs: int | None = opt(None, "stop earlier, after N epochs (default: as many as max_iter takes)", ge=1, le=100_000)
    batch_size: int | None = opt(None, "default: the TRAIN Data layer's batch_size", ge=1, le=65536)

    def validate(self) -> None:
        # The engine's checks, with the two values the solver fills in when they are not given.
        EngineConfig.validate(dataclasses.replace(self, epochs=self.epochs or 1, batch_size=self.batch_size or 1))
        if not self.solver and not self.resume:
            raise UserError("--solver is required", "pass a Caffe solver.prototxt, e.g. --solver lenet_solver.prototxt")
        for key in ("max_iter", "epochs", "batch_size"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise UserError(f"--{key.replace('_', '-')} must be at least 1, got {value}")


# The other commands' arguments (`dlbox caffe import|convert-imageset`), declared for dlbox.cliutil.Command.
@dataclass(kw_only=True)
class ImportArgs:
    prototxt: str = positional("the net definition (protobuf text format)")
    weights: str | None = positional("the .caffemodel (default: the prototxt's fillers)", default=None, nargs="?")
    out: str = opt(REQUIRED, "model.pt (read back with dlbox.convert.caffe.load_pt) or model.onnx", output="file")
    input_shape: list[str] | None = opt(None, "shape of an input blob (needed for Data layers; overrides Input layers); "
                                              "repeatable", action="append", metavar="NAME=N,C,H,W")  # fmt: skip


@dataclass(kw_only=True)
class ConvertImagesetArgs:
    source: str = positional("a folder of class subfolders (or of the files --list names), or digits:train / digits:test")
    out: str = positional("the LMDB folder to create (must not exist)", output="dir")
    list: str | None = opt(None, "Caffe's list file: lines `relative/path.jpg LABEL` under SOURCE")
    gray: bool = opt(False, "store images as one gray channel")
    resize_height: int = opt(0, "resize every image to this height (with --resize-width)", ge=0, le=16384)
    resize_width: int = opt(0, "resize every image to this width (with --resize-height)", ge=0, le=16384)
    shuffle: bool = opt(False, "shuffle the images before writing (seeded by --seed)")
    seed: int = opt(0, "seed of --shuffle", ge=0, le=2**32 - 1)
    encoded: bool = opt(False, "store the image files (JPEG/PNG) rather than pixels")
    encode_type: str = opt("", "with --encoded: re-encode as png or jpg")
