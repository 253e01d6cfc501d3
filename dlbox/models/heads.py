"""Classifier heads: find them in a built model, re-initialise them for another class count (fine-tuning)."""

from __future__ import annotations

from torch import nn

from dlbox.base.errors import UserError


def heads(model: nn.Module, num_classes: int) -> list[str]:
    """Names of the classifier layers (main and auxiliary): the Linear/1x1-Conv layers producing the logits."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and m.out_features == num_classes:
            out.append(name)
        elif isinstance(m, nn.Conv2d) and m.out_channels == num_classes and m.kernel_size == (1, 1):
            out.append(name)
    return out


def replace_heads(model: nn.Module, old_classes: int, new_classes: int) -> list[str]:
    """Re-initialise every classifier head for ``new_classes`` (fine-tuning); returns their names."""
    names = heads(model, old_classes)
    if not names:
        raise UserError(f"cannot find the classifier layer of {type(model).__name__} with {old_classes} outputs")
    for name in names:
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        leaf = name.rsplit(".", 1)[-1]
        old = model.get_submodule(name)
        if isinstance(old, nn.Linear):
            new = nn.Linear(old.in_features, new_classes, bias=old.bias is not None)
            nn.init.normal_(new.weight, std=0.01)
            if new.bias is not None:
                nn.init.zeros_(new.bias)
        else:
            new = nn.Conv2d(old.in_channels, new_classes, 1)
        setattr(parent, leaf, new)
    return names
