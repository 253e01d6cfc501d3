"""Models to benchmark: any torchvision classification model by name (random weights, no download), and a tiny
CNN whose FLOPs are easy to count by hand (for tests and quick checks)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dlbox.errors import UserError, close_matches

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


def synthetic_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3, size, size) synthetic images: noise plus a colour cast per image, so images differ in more than
    noise and a model's top-1 class can differ between them (what the parity checks compare)."""
    cast = torch.randn((n, 3, 1, 1), generator=generator)
    return torch.randn((n, 3, size, size), generator=generator) + 2 * cast


def classification_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def default_image_size(name: str) -> int:
    if name.startswith("timm:"):  # timm's pretrained config for the name
        from dlbox.tasks.classify import timm_models

        return timm_models.transform_info(timm_models.pretrained_cfg(name)).get("img_size", 224)
    return {TINY: 32, "inception_v3": 299}.get(name, 224)


def build(name: str, seed: int = 0) -> nn.Module:
    """A freshly initialised model (fixed seed, so two builds are identical); no weights are downloaded."""
    torch.manual_seed(seed)
    if name == TINY:
        return TinyNet()
    if name.startswith("timm:"):  # timm's zoo, random weights (timm never downloads here)
        from dlbox.tasks.classify import timm_models

        return timm_models.create(name, 1000)
    import torchvision

    known = classification_models()
    if name not in known:
        hint = (
            close_matches(name, known + [TINY])
            or "any torchvision classification model, e.g. resnet50, or tiny"
        )
        raise UserError(f"unknown model {name!r}", hint)
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}
    return torchvision.models.get_model(name, weights=None, **kwargs)


def from_weights(weights: str, name: str) -> tuple[nn.Module, str, int]:
    """(model, its name, its input size) for --weights, resolved as the classify verbs resolve them (TF-Slim
    checkpoints, hub:NAME, runs and checkpoints: dlbox.tasks.classify.inference.load_classifier)."""
    from dlbox.hub.convert import slim
    from dlbox.tasks.classify.inference import load_classifier

    own_name = slim.handles(weights) or Path(weights).is_dir()  # the weights say which network they are
    clf = load_classifier(weights, None if own_name else name)
    if clf.model is None:
        raise UserError(f"--weights {weights}: an ONNX file cannot be benchmarked as a PyTorch model",
                        "pass the run or checkpoint it was exported from, with --backend onnxruntime")  # fmt: skip
    return clf.model, clf.model_name, clf.img_size

