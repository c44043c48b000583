"""Tensor data of distributed checkpoints (DCP, DeepSpeed) for exports: merged one tensor at a time.

The provider assembles each full tensor from its chunks only when the engine
asks for it, so a merge holds one tensor (plus the shard being written), never
the model: torch's ``dcp_to_torch_save``, accelerate's ``merge-weights`` and
DeepSpeed's ``zero_to_fp32.py`` all build the whole state dict first. A tensor
whose chunks are row blocks stored as they are (what FSDP2 and ZeRO's fp32
partitions write) is not assembled at all: ``file_runs`` names its bytes in the
rank files and the engine copies them file to file, so a plain merge never
imports torch and never holds a tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckpt_gui.core.dtypes import SAFETENSORS_TO_TORCH
from ckpt_gui.core.export.plan import PlannedTensor
from ckpt_gui.core.formats.distributed.values import CheckpointPieces
from ckpt_gui.core.model import Checkpoint

# How many tensors ahead of the one being merged to prefetch chunk directories for.
PREFETCH_TENSORS = 16


class DistributedTensors:
    def __init__(self, root: Path, facts: dict[str, Any], order: list[str] | None = None) -> None:
        metadata: dict[str, Any] = {"weight_set": facts.get("weight_set")}
        if facts.get("tag"):
            metadata["deepspeed"] = {"tag": facts["tag"]}
        # Only what the layouts need: the folder, the format and the chosen weight set.
        source = Checkpoint(str(root), str(facts["format"]), (), (), root, metadata)
        self.root = root
        self.pieces = CheckpointPieces(source)
        self.warnings: list[str] = []
        # Source names in the order the export asks for them, for prefetching.
        self.order = order or []
        self.position = {name: i for i, name in enumerate(self.order)}
        self.prefetched = 0

    def _prefetch_after(self, name: str) -> None:
        here = self.position.get(name)
        if here is None:
            return
        upto = min(len(self.order), here + 1 + PREFETCH_TENSORS)
        if self.prefetched < upto:
            self.pieces.prefetch(self.order[max(self.prefetched, here) : upto])
            self.prefetched = upto

    def __call__(self, tensor: PlannedTensor) -> Any:
        import torch

        source = tensor.source
        assert source is not None
        self._prefetch_after(source.name)
        raw = self.pieces.tensor_bytes(source.name)
        dtype = getattr(torch, SAFETENSORS_TO_TORCH[source.dtype])
        if raw.size == 0:
            return torch.empty(source.shape, dtype=dtype)
        return torch.frombuffer(raw, dtype=dtype).reshape(source.shape)

    def file_runs(self, tensor: PlannedTensor) -> list[tuple[Path, int, int]] | None:
        """The tensor's bytes as runs of the rank files (row-block chunks), when it is kept as is."""
        source = tensor.source
        assert source is not None
        if source.dtype != tensor.dtype:
            return None
        self._prefetch_after(source.name)
        runs = self.pieces.tensor_runs(source.name)
        if runs is None:
            return None
        return [(self.root / file, offset, length) for file, offset, length in runs]

    def release(self) -> None:
        self.pieces.close()
