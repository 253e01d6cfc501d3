"""A Caffe NetParameter as one PyTorch module: layers run in prototxt order over named blobs.

Caffe keeps a TRAIN and a TEST net that share weights by layer name; ``CaffeNet`` builds the phases asked for
over one set of modules and runs the TRAIN plan in train mode, the TEST plan in eval mode, so the engine's
``model.train()`` / ``model.eval()`` switch phases the way Caffe's solver switches nets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.convert.caffe import layers as L
from dlbox.convert.caffe.textformat import Msg

Shape = tuple[int, ...]


@dataclass
class Step:
    name: str
    type: str
    key: str  # the module's key in CaffeNet.modules_ (layer names may hold '/' and '.')
    bottoms: list[str]
    tops: list[str]
    loss_weights: list[float] = field(default_factory=list)


def net_layers(net: Msg) -> list[Msg]:
    """The layers of a net: `layer { ... }`, or V1's `layers { type: CONVOLUTION }` with the type renamed."""
    out = list(net.all("layer"))
    for v1 in net.all("layers"):
        kind = v1.get("type")
        if isinstance(kind, str) and kind in L.V1_TYPES:
            v1 = Msg({**v1.fields, "type": [L.V1_TYPES[kind]]})
        out.append(v1)
    for layer in out:
        if not layer.get("type"):
            raise UserError(f"layer {layer.get('name', '?')!r} has no type", "every layer needs `type: \"...\"`")
    return out


def _rule_matches(rule: Msg, phase: str) -> bool:
    """NetStateRule against the state (phase, level 0, no stages), as Caffe's StateMeetsRule."""
    if rule.has("phase") and rule.get("phase") not in (phase, {"TRAIN": 0, "TEST": 1}[phase]):
        return False
    if rule.has("min_level") and 0 < int(rule.get("min_level")):
        return False
    if rule.has("max_level") and 0 > int(rule.get("max_level")):
        return False
    return not rule.has("stage")  # a required stage is never present


def included(layer: Msg, phase: str) -> bool:
    if layer.has("include"):
        return any(_rule_matches(r, phase) for r in layer.all("include"))
    return not any(_rule_matches(r, phase) for r in layer.all("exclude"))


def declared_inputs(net: Msg) -> dict[str, Shape | None]:
    """The net-level `input:` blobs with `input_shape { dim }` or four `input_dim` each."""
    names = net.all("input")
    shapes = [tuple(int(d) for d in s.all("dim")) for s in net.all("input_shape")]
    dims = [int(d) for d in net.all("input_dim")]
    if not shapes and dims:
        shapes = [tuple(dims[i : i + 4]) for i in range(0, len(dims), 4)]
    return {n: (shapes[i] if i < len(shapes) else None) for i, n in enumerate(names)}


def _key(name: str, taken: set[str]) -> str:
    key = re.sub(r"\W", "_", name) or "layer"
    key = "_" + key if key[0].isdigit() else key
    base, n = key, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


class CaffeNet(nn.Module):
    """``phases``: ("TEST",) for inference, ("TRAIN", "TEST") for a solver's net. ``shapes`` gives (or overrides)
    input shapes by blob name; a Data layer's tops need it. ``deploy`` leaves out loss and accuracy layers."""

    def __init__(self, net: Msg, phases: tuple[str, ...] = ("TEST",), shapes: dict[str, Shape] | None = None,
                 deploy: bool = False):  # fmt: skip
        super().__init__()
        self.net_name = str(net.get("name", "net"))
        self.modules_ = nn.ModuleDict()
        self.layer_keys: dict[str, str] = {}  # layer name -> module key
        self.layer_types: dict[str, str] = {}
        self.param_specs: dict[str, list[Msg]] = {}  # layer name -> its `param { lr_mult decay_mult }`
        self.plans: dict[str, list[Step]] = {}
        self.inputs: dict[str, list[str]] = {}
        self.input_shapes: dict[str, dict[str, Shape]] = {}
        self.outputs: dict[str, list[str]] = {}
        layer_list = net_layers(net)
        for phase in phases:
            self._build(net, layer_list, phase, dict(shapes or {}), deploy)

    # --- building ------------------------------------------------------------------------------------
    def _build(self, net: Msg, layer_list: list[Msg], phase: str, shapes: dict[str, Shape], deploy: bool) -> None:
        blobs: dict[str, Shape] = {}
        inputs: list[str] = []
        plan: list[Step] = []
        available: list[str] = []  # Caffe's net outputs: tops no later layer consumes

        def add_input(name: str, shape: Shape | None, layer: str) -> None:
            shape = tuple(shapes.get(name, shape) or ())
            if not shape:
                raise UserError(f"{layer}: the shape of input {name!r} is unknown", f"give it, e.g. --input-shape {name}=1,3,224,224")
            blobs[name] = shape
            inputs.append(name)
            available.append(name)

        for name, shape in declared_inputs(net).items():
            add_input(name, shape, "net input")
        for layer in layer_list:
            if not included(layer, phase):
                continue
            name, kind = str(layer.get("name", "")), layer.get("type")
            if deploy and (kind == "Accuracy" or str(kind).endswith("Loss")):
                continue
            tops, bottoms = [str(t) for t in layer.all("top")], [str(b) for b in layer.all("bottom")]
            if kind == "Input":
                given = [tuple(int(d) for d in s.all("dim")) for s in layer.msg("input_param").all("shape")]
                for i, t in enumerate(tops):
                    add_input(t, given[min(i, len(given) - 1)] if given else None, f"layer {name!r} (Input)")
                continue
            if kind == "Data":
                if deploy:
                    tops = tops[:1]  # no labels when deployed
                for t in tops:
                    add_input(t, None, f"layer {name!r} (Data; import does not read its database)")
                bottoms = tops
            for b in bottoms:
                if b not in blobs:
                    raise UserError(f"layer {name!r} ({kind}) takes blob {b!r}, which no earlier layer makes",
                                    "check the layer's bottom names and include/exclude phases")  # fmt: skip
            in_shapes = [blobs[b] for b in bottoms]
            key = self.layer_keys.get(name)
            if key is None or self.layer_types.get(name) != kind:
                module = L.build(layer, in_shapes)
                key = _key(name, set(self.modules_.keys()))
                self.modules_[key] = module
                self.layer_keys[name], self.layer_types[name] = key, kind
                self.param_specs[name] = layer.all("param")
            module = self.modules_[key]
            out_shapes = self._probe(module, in_shapes, layer)
            if kind == "Data":
                tops = tops[: len(out_shapes)]
            weights = [float(w) for w in layer.all("loss_weight")]
            if not weights and kind in L.LOSS_TYPES:
                weights = [1.0]
            plan.append(Step(name, kind, key, bottoms, tops, weights))
            for b in bottoms:
                if b in available:
                    available.remove(b)
            for t, s in zip(tops, out_shapes, strict=False):
                blobs[t] = s
                if t not in available:
                    available.append(t)
        self.plans[phase], self.inputs[phase], self.outputs[phase] = plan, inputs, available
        self.input_shapes[phase] = {n: blobs[n] for n in inputs}

    @staticmethod
    @torch.no_grad()
    def _probe(module: nn.Module, shapes: list[Shape], layer: Msg) -> list[Shape]:
        """Output shapes by running the layer once on zeros (in eval mode: no statistics move)."""
        was = module.training
        module.eval()
        try:
            outs = module(*[torch.zeros(s) for s in shapes])
        except RuntimeError as e:
            msg = str(e).splitlines()[0][:200]
            raise UserError(f"layer {layer.get('name')!r} ({layer.get('type')}) cannot take inputs {shapes}: {msg}") from None
        finally:
            module.train(was)
        return [tuple(o.shape) for o in outs]

    # --- running -------------------------------------------------------------------------------------
    @property
    def phase(self) -> str:
        if len(self.plans) == 1:
            return next(iter(self.plans))
        return "TRAIN" if self.training else "TEST"

    def forward(self, *args: torch.Tensor, **named: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inputs positionally (in ``self.inputs[phase]`` order) or by blob name; returns every blob by name."""
        phase = self.phase
        blobs = dict(zip(self.inputs[phase], args, strict=False))
        blobs.update(named)
        missing = [n for n in self.inputs[phase] if n not in blobs]
        if missing:
            raise UserError(f"the {phase} net needs inputs {missing}")
        for step in self.plans[phase]:
            outs = self.modules_[step.key](*[blobs[b] for b in step.bottoms])
            blobs.update(zip(step.tops, outs, strict=False))
        return blobs

    def loss(self, blobs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Caffe's objective: sum of loss_weight x top over the phase's layers."""
        total = None
        for step in self.plans[self.phase]:
            for top, w in zip(step.tops, step.loss_weights, strict=False):
                if w:
                    term = blobs[top].sum() * w
                    total = term if total is None else total + term
        if total is None:
            raise UserError(f"the {self.phase} net has no loss layer", "add a SoftmaxWithLoss layer (or loss_weight)")
        return total

    # --- weights -------------------------------------------------------------------------------------
    def load_caffe_weights(self, weights: dict[str, list[np.ndarray]]) -> dict[str, list[str]]:
        """Copy blobs by layer name, as Caffe does (layers absent from the file keep their fillers)."""
        loaded, missing = [], []
        for name, key in self.layer_keys.items():
            blobs = self.modules_[key].caffe_blobs()
            if not blobs:
                continue
            if name not in weights:
                missing.append(name)
                continue
            arrays = weights[name]
            if len(arrays) != len(blobs):
                raise UserError(f"layer {name!r}: the caffemodel has {len(arrays)} blobs, the prototxt makes {len(blobs)}",
                                "are the prototxt and caffemodel of the same network?")  # fmt: skip
            for i, (t, a) in enumerate(zip(blobs, arrays, strict=True)):
                if _squeeze(a.shape) != _squeeze(tuple(t.shape)):
                    raise UserError(f"layer {name!r} blob {i}: shape {tuple(a.shape)} in the caffemodel, "
                                    f"{tuple(t.shape)} from the prototxt", "are the prototxt and caffemodel of the same network?")  # fmt: skip
                with torch.no_grad():
                    t.copy_(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).reshape(t.shape))
            loaded.append(name)
        return {"loaded": loaded, "missing": missing}

    def caffe_layers(self) -> list[tuple[str, str, list[np.ndarray]]]:
        """(name, type, blobs) of every layer with weights, for writing a .caffemodel."""
        out = []
        for name, key in self.layer_keys.items():
            blobs = self.modules_[key].caffe_blobs()
            if blobs:
                out.append((name, self.layer_types[name], [b.detach().cpu().float().numpy() for b in blobs]))
        return out

    def parameter_groups(self) -> list[tuple[nn.Parameter, float, float]]:
        """(parameter, lr_mult, decay_mult) for every learnable blob, from each layer's `param` entries."""
        out = []
        for name, key in self.layer_keys.items():
            specs = self.param_specs.get(name, [])
            for i, blob in enumerate(self.modules_[key].caffe_blobs()):
                if isinstance(blob, nn.Parameter):
                    spec = specs[i] if i < len(specs) else Msg()
                    out.append((blob, float(spec.get("lr_mult", 1.0)), float(spec.get("decay_mult", 1.0))))
        return out


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Old caffemodels store (1, 1, out, in) for (out, in) and (1, 1, 1, n) for (n,)."""
    shape = tuple(int(d) for d in shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape
