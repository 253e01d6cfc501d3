"""``--weights hub:NAME``: the local path of a model file, through the cache, mirrors and offline rules."""

from __future__ import annotations

from pathlib import Path

from dlbox.errors import UserError
from dlbox.hub import catalog, fetch
from dlbox.hub import settings as hub_settings
from dlbox.hub.catalog import ModelEntry

# Loaders dlbox knows of but cannot build a PyTorch model from yet (none now: TF-Slim checkpoints go through
# dlbox.hub.convert.slim, which refuses the architectures it does not convert by name).
UNSUPPORTED_LOADERS: tuple[str, ...] = ()


def resolve_weights(spec: str, extra: list[str | Path] | None = None) -> Path:
    """``hub:NAME`` -> the verified local file of model NAME (downloaded when needed)."""
    spec = str(spec)
    if not spec.startswith("hub:") or not spec[4:].strip():
        raise UserError(f"{spec!r} is not a hub reference", "write hub:NAME, e.g. hub:resnet18 (see `dlbox hub list`)")
    entry = catalog.get(spec[4:], extra)
    if not isinstance(entry, ModelEntry):
        raise UserError(f"hub:{entry.name} is a {entry.kind}, not model weights",
                        f"see the models with `dlbox hub list --task {entry.task}`")  # fmt: skip
    if entry.loader in UNSUPPORTED_LOADERS:
        raise UserError(f"hub:{entry.name} is a {entry.loader} checkpoint: turning it into a dlbox model is not "
                        "supported yet", "use torchvision weights (`dlbox hub list --task classify`), or "
                        f"`dlbox hub download {entry.name} --extract` to use it with TensorFlow")  # fmt: skip
    if entry.loader == "tf-slim":  # an archive: the checkpoint inside it, extracted once
        from dlbox.hub.convert.slim import hub_checkpoint

        return hub_checkpoint(entry)
    f = entry.weights_file
    paths = fetch.ensure(entry, [f], hub_settings.load())
    return paths[f.name]
