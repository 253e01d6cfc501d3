"""Models to benchmark: any torchvision classification model by name (random weights, no download), and a tiny
CNN whose FLOPs are easy to count by hand (for tests and quick checks)."""

from __future__ import annotations

import torch
from torch import nn

from dlbox.base.errors import UserError, close_matches
from dlbox.models import registry
from dlbox.models.weights import resolve_weights
from dlbox.runtime.paths import synthetic_images  # noqa: F401  (re-exported: the benchmark's inputs)

TINY = "tiny"


class TinyNet(nn.Module):
    """conv3x3(3->8) BN ReLU, conv3x3(8->16, stride 2) BN ReLU, global average pool, linear(16->10).

    Forward FLOPs at batch N and input HxW (multiply-adds counted as 2, the convention of FlopCounterMode):
    2*N*H*W*8*3*9 + 2*N*(H/2)*(W/2)*16*8*9 + 2*N*16*10.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)
        # A random bias outweighs what random features say, and every image would get the same class;
        # without it, the top-1 class depends on the image, which the parity checks need.
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, classes)
        return self.fc(self.pool(self.features(x)).flatten(1))


def tiny_flops(batch: int, height: int, width: int, num_classes: int = 10) -> int:
    """TinyNet's forward FLOPs, counted by hand (see the class docstring)."""
    conv1 = 2 * batch * height * width * 8 * 3 * 9
    h2, w2 = (height + 1) // 2, (width + 1) // 2  # stride 2, padding 1, kernel 3
    conv2 = 2 * batch * h2 * w2 * 16 * 8 * 9
    return conv1 + conv2 + 2 * batch * 16 * num_classes


def classification_models() -> list[str]:
    return list(registry.names("classify", "torchvision"))


def default_image_size(name: str) -> int:
    if name == TINY:
        return 32
    spec = registry.find(name)  # timm: its pretrained config's input size
    return (spec.input_size if spec else None) or 224


def build(name: str, seed: int = 0) -> nn.Module:
    """A freshly initialised model (fixed seed, so two builds are identical); no weights are downloaded."""
    torch.manual_seed(seed)
    if name == TINY:
        return TinyNet()
    spec = registry.find(name)
    if spec is None or spec.task != "classify" or spec.family not in ("torchvision", "timm"):
        hint = (
            close_matches(name, classification_models() + [TINY])
            or "any torchvision classification model, e.g. resnet50, or tiny"
        )
        raise UserError(f"unknown model {name!r}", hint)
    if name in ("inception_v3", "googlenet"):  # the benchmark times the main classifier only
        import torchvision

        return torchvision.models.get_model(name, weights=None, aux_logits=False, init_weights=False)
    return spec.build(1000)  # the registry's builder (torchvision's or timm's, random weights)


def from_weights(weights: str, name: str) -> tuple[nn.Module, str, int]:
    """(model, its name, its input size) for --weights, resolved as the classify verbs resolve them (TF-Slim
    checkpoints, hub:NAME, runs and checkpoints), through the registry's loader of classifiers."""
    src = resolve_weights(weights)
    own_name = src.kind in ("slim", "run", "hf-folder")  # the weights say which network they are
    clf = registry.load("classify", src, None if own_name else name)
    if clf.model is None:
        raise UserError(f"--weights {weights}: an ONNX file cannot be benchmarked as a PyTorch model",
                        "pass the run or checkpoint it was exported from, with --backend onnxruntime")  # fmt: skip
    return clf.model, clf.model_name, clf.img_size
