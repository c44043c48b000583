"""The merged weight of one adapted module, as peft's ``merge_and_unload`` computes it.

Written out (rather than calling peft) because peft merges a whole model in memory;
here one base tensor at a time is merged as the export streams past it. The
formulas are peft 0.21's (``lora/layer.py`` and ``lora/variants.py``):

- linear: ``W + s * B @ A`` (transposed for ``fan_in_fan_out``, GPT-2's Conv1D);
- embedding: ``W + s * (B @ A).T`` (``lora_embedding_A`` r x vocab, ``_B`` dim x r);
- DoRA: ``m / ||W + delta|| * (W + delta)``, the norm per output row (per embedding
  column for embeddings), from the unmerged weight;
- ``lora_bias``: ``bias + s * lora_B.bias``.

Arithmetic is in float32 whatever the stored dtype, cast once at the end (peft on
CPU also computes the delta in float32, then adds it in the weight's dtype).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merged_weight(
    work: Any, roles: Mapping[str, Any], kind: str, scale: float, fan_in_fan_out: bool
) -> Any:
    """The module's LoRA (``roles``: role -> tensor) merged into ``work`` in place.

    ``work`` is the base weight as float32 (a scratch copy: it is overwritten), and
    is returned. In place (``addmm_``), so no matrix of the weight's size is allocated.
    """
    import torch

    magnitude = roles.get("magnitude")
    if kind == "embedding":
        a = roles["embedding_A"].to(torch.float32)  # r x vocab
        b = roles["embedding_B"].to(torch.float32)  # dim x r
        work.addmm_(a.T, b.T, alpha=scale)  # + s * (B @ A).T, vocab x dim
        if magnitude is not None:
            norm = torch.linalg.norm(work, dim=0)  # per embedding column
            work.mul_((magnitude.to(torch.float32) / norm).view(1, -1))
        return work
    if kind != "linear":
        raise ValueError(f"cannot merge a {kind} LoRA layer")
    a = roles["A"].to(torch.float32)  # r x in
    b = roles["B"].to(torch.float32)  # out x r
    standard = work.T if fan_in_fan_out else work  # out x in (a view)
    standard.addmm_(b, a, alpha=scale)
    if magnitude is not None:
        norm = torch.linalg.norm(standard, dim=1)
        standard.mul_((magnitude.to(torch.float32) / norm).view(-1, 1))
    return work


def merged_bias(bias: Any, lora_b_bias: Any, scale: float) -> Any:
    import torch

    return bias.to(torch.float32) + lora_b_bias.to(torch.float32) * scale
