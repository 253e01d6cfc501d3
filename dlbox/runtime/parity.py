"""Is a fast path still right? Its logits against fp32 eager PyTorch's on the same fixed batch.

Tolerances are relative to the largest |logit| of the fp32 reference over the batch, one per precision:
fp32 paths differ only by the order of additions (1e-3 leaves room for TF32 convolutions on a GPU); bf16 keeps
8 bits of mantissa (about 0.4% per rounding, compounded over the layers: 5e-2); fp16 keeps 11 bits (1e-2);
int8 rounds every weight and activation to 1 part in 255 or coarser (1e-1).

A path passes when its largest logit difference is within its tolerance. That also fixes the top-1 class of
every image whose two best fp32 logits are more than twice the tolerance apart ("clearly decided"); closer
than that, either class is right within the tolerance. The counts of same top-1 classes are reported too.
"""

from __future__ import annotations

from typing import Any

import torch

TOLERANCE = {"fp32": 1e-3, "bf16": 5e-2, "fp16": 1e-2, "int8": 1e-1}


def parity(reference: torch.Tensor, output: torch.Tensor, tolerance: float) -> dict[str, Any]:
    """Compare (N, classes) logits; returns the figures and ``ok``."""
    reference, output = reference.float(), output.float()
    if output.shape != reference.shape:
        return {"ok": False, "reason": f"output shape {tuple(output.shape)} != {tuple(reference.shape)}",
                "max_rel_diff": None, "tolerance": tolerance}  # fmt: skip
    if not torch.isfinite(output).all():
        return {"ok": False, "reason": "non-finite logits", "max_rel_diff": None, "tolerance": tolerance}
    scale = reference.abs().max().clamp_min(1e-12)
    rel = float((output - reference).abs().max() / scale)
    same = reference.argmax(1) == output.argmax(1)  # (N,)
    top2 = reference.topk(min(2, reference.shape[1]), dim=1).values  # (N, 2)
    decided = (top2[:, 0] - top2[:, -1]) / scale > 2 * tolerance  # (N,) images with a clear fp32 winner
    result = {
        "ok": rel <= tolerance, "max_rel_diff": round(rel, 6), "tolerance": tolerance,
        "top1_same": int(same.sum()), "images": int(same.numel()),
        "decided": int(decided.sum()), "decided_same": int(same[decided].sum()),
    }  # fmt: skip
    if not result["ok"]:
        result["reason"] = f"logits differ by {rel:.2%} of the largest (tolerance {tolerance:.1%})"
    return result


def describe(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    if p.get("max_rel_diff") is None:
        return f"parity: {p.get('reason')}"
    return (f"top-1 same as fp32 eager on {p['top1_same']}/{p['images']} images, max logit diff "
            f"{p['max_rel_diff']:.2%} of the largest (tolerance {p['tolerance']:.1%})")  # fmt: skip
