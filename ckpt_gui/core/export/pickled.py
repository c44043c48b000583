"""Tensor data of pickled checkpoints that the engine cannot copy as one run of bytes.

Contiguous pickled tensors have ``TensorInfo.offset`` and go through the
engine's file path like safetensors. What reaches this provider are strided
views (a transpose or slice saved as its own entry): their bytes are gathered
from the file by ``values/strided.py`` (our reader; the pickle is never
loaded) and handed to the engine as a torch tensor, since exports write
through torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckpt_gui.core.dtypes import SAFETENSORS_TO_TORCH
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.plan import PlannedTensor
from ckpt_gui.core.values.strided import tensor_bytes_from_file


class PickledTensors:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.warnings: list[str] = []

    def __call__(self, tensor: PlannedTensor) -> Any:
        import torch

        source = tensor.source
        assert source is not None
        path = self.root / source.file
        if source.storage_start is None:
            raise CheckpointError(path, f"tensor '{source.name}': its bytes cannot be located")
        raw = tensor_bytes_from_file(path, source)
        dtype = getattr(torch, SAFETENSORS_TO_TORCH[source.dtype])
        if raw.size == 0:
            return torch.empty(source.shape, dtype=dtype)
        return torch.from_numpy(raw).view(dtype).reshape(source.shape)

    def release(self) -> None:
        """Nothing is held between tensors (kept for the engine's interface)."""
