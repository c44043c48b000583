"""Tensor data of pickled checkpoints, through the weights-only loader with mmap.

One source file is loaded at a time (memory-mapped for the zip format, so only
pages being copied are resident) and dropped when the export moves on, which
unmaps it. Tensors sharing storage (tied weights) are each written as their own
copy, since safetensors cannot alias; they are reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export.plan import PlannedTensor
from ckpt_gui.core.pickles.torch_load import MappedPickle


class PickledTensors:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.file: str | None = None
        self.pickle: MappedPickle | None = None
        self.warnings: list[str] = []

    def __call__(self, tensor: PlannedTensor) -> Any:
        source = tensor.source
        assert source is not None
        if self.pickle is None or source.file != self.file:
            self._load(source.file)
        assert self.pickle is not None
        value = self.pickle.get(source.name)
        if value is None:
            raise CheckpointError(
                self.root / source.file, f"tensor '{source.name}' is not in the file"
            )
        return value

    def _load(self, file: str) -> None:
        self.release()
        self.pickle = MappedPickle(self.root / file)
        self.file = file
        self._report_shared(self.pickle.state_dict)

    def _report_shared(self, state_dict: Any) -> None:
        owners: dict[int, str] = {}
        for name, value in state_dict.items():
            try:
                key = value.untyped_storage().data_ptr()
            except (RuntimeError, AttributeError):
                continue
            if key in owners and value.numel() > 0:
                self.warnings.append(
                    f"'{name}' shares storage with '{owners[key]}' in {self.file}: "
                    "written as a separate copy"
                )
            else:
                owners.setdefault(key, name)

    def release(self) -> None:
        """Let the file go; the engine calls it once no write of its tensors is pending."""
        if self.pickle is not None:
            self.pickle.close()
            self.pickle = None
        self.file = None
