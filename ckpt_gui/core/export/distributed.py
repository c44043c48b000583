"""Tensor data of distributed checkpoints (DCP, DeepSpeed) for exports: merged one tensor at a time.

The provider assembles each full tensor from its chunks only when the engine
asks for it, so a merge holds one tensor (plus the shard being written), never
the model: torch's ``dcp_to_torch_save``, accelerate's ``merge-weights`` and
DeepSpeed's ``zero_to_fp32.py`` all build the whole state dict first.
"""

from __future__ import annotations

import contextlib
import itertools
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ckpt_gui.core.dtypes import SAFETENSORS_TO_TORCH
from ckpt_gui.core.export.plan import PlannedTensor
from ckpt_gui.core.formats.distributed.values import CheckpointPieces
from ckpt_gui.core.model import Checkpoint


class DistributedTensors:
    """The engine's provider: each full tensor, assembled on a reader thread one step ahead.

    While the writer threads write tensor k, the reader assembles tensor k + 1 (in the
    plan's order), so reading and writing overlap; memory holds those two tensors.
    Every read happens on the one reader thread, which owns the open files.
    """

    def __init__(self, root: Path, facts: dict[str, Any], order: list[str] | None = None) -> None:
        metadata: dict[str, Any] = {"weight_set": facts.get("weight_set")}
        if facts.get("tag"):
            metadata["deepspeed"] = {"tag": facts["tag"]}
        # Only what the layouts need: the folder, the format and the chosen weight set.
        source = Checkpoint(str(root), str(facts["format"]), (), (), root, metadata)
        self.pieces = CheckpointPieces(source)
        self.warnings: list[str] = []
        names = order or []
        self._next = dict(itertools.pairwise(names))
        self._reader: ThreadPoolExecutor | None = None
        self._ahead: tuple[str, Future[Any]] | None = None

    def _submit(self, name: str) -> Future[Any]:
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-read")
        return self._reader.submit(self.pieces.tensor_bytes, name)

    def __call__(self, tensor: PlannedTensor) -> Any:
        import torch

        source = tensor.source
        assert source is not None
        if self._ahead is not None and self._ahead[0] == source.name:
            pending = self._ahead[1]
        else:
            self._drop_ahead()
            pending = self._submit(source.name)
        self._ahead = None
        following = self._next.get(source.name)
        raw = pending.result()
        if following is not None:
            self._ahead = (following, self._submit(following))
        dtype = getattr(torch, SAFETENSORS_TO_TORCH[source.dtype])
        if raw.size == 0:
            return torch.empty(source.shape, dtype=dtype)
        return torch.frombuffer(raw, dtype=dtype).reshape(source.shape)

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            # Not needed any more; a read error surfaces when its tensor is asked for.
            with contextlib.suppress(Exception):
                self._ahead[1].result()
            self._ahead = None

    def release(self) -> None:
        """Let the files go (after the pending read), on the reader thread that opened them."""
        self._drop_ahead()
        if self._reader is not None:
            self._reader.submit(self.pieces.close).result()
            self._reader.shutdown(wait=True)
            self._reader = None
