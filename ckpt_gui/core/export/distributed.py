"""Tensor data of distributed checkpoints (DCP, DeepSpeed) for exports: merged one tensor at a time.

The provider assembles each full tensor from its chunks only when the engine
asks for it, so a merge holds one tensor (plus the shard being written), never
the model: torch's ``dcp_to_torch_save``, accelerate's ``merge-weights`` and
DeepSpeed's ``zero_to_fp32.py`` all build the whole state dict first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckpt_gui.core.dtypes import SAFETENSORS_TO_TORCH
from ckpt_gui.core.export.plan import PlannedTensor
from ckpt_gui.core.formats.distributed.values import CheckpointPieces
from ckpt_gui.core.model import Checkpoint


class DistributedTensors:
    def __init__(self, root: Path, facts: dict[str, Any]) -> None:
        metadata: dict[str, Any] = {"weight_set": facts.get("weight_set")}
        if facts.get("tag"):
            metadata["deepspeed"] = {"tag": facts["tag"]}
        # Only what the layouts need: the folder, the format and the chosen weight set.
        source = Checkpoint(str(root), str(facts["format"]), (), (), root, metadata)
        self.pieces = CheckpointPieces(source)
        self.warnings: list[str] = []

    def __call__(self, tensor: PlannedTensor) -> Any:
        import torch

        source = tensor.source
        assert source is not None
        raw = self.pieces.tensor_bytes(source.name)
        dtype = getattr(torch, SAFETENSORS_TO_TORCH[source.dtype])
        if raw.size == 0:
            return torch.empty(source.shape, dtype=dtype)
        return torch.frombuffer(raw, dtype=dtype).reshape(source.shape)

    def release(self) -> None:
        self.pieces.close()
