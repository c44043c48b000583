"""What an export will write, computed before anything is written.

The shard split follows huggingface_hub's ``split_torch_state_dict_into_shards``
exactly (greedy in tensor order; a tensor larger than the limit gets a shard of
its own, appended at once; header bytes do not count towards the limit), and
names and index follow ``save_pretrained``: ``model.safetensors`` for one shard,
else ``model-00001-of-00003.safetensors`` + ``model.safetensors.index.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ckpt_gui.core.model import TensorInfo

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
DEFAULT_MAX_SHARD_SIZE = 5 * 10**9  # what huggingface_hub uses when nothing is asked
HEADER_ALIGNMENT = 8


@dataclass(frozen=True)
class PlannedTensor:
    """One output tensor; ``source`` is where its bytes come from (None: generated)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    source: TensorInfo | None = None

    @property
    def parameters(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def raw_copy(self) -> bool:
        """The bytes can be copied without decoding (same dtype, offset known)."""
        return (
            self.source is not None
            and self.source.offset is not None
            and self.source.dtype == self.dtype
        )


# Gives the data of a planned tensor that is not copied from a safetensors file:
# a torch tensor (pickled source, random init), flattened by the engine. Here, beside
# PlannedTensor, so that the engine and the conversion kernels share it without
# importing each other.
TensorProvider = Callable[[PlannedTensor], Any]


@runtime_checkable
class CopiesFileRuns(Protocol):
    """A provider that can name a tensor's bytes as runs of its files' bytes.

    ``file_runs`` gives ``(path, offset, length)`` runs that, back to back, are
    the tensor's bytes in the planned dtype, or None when the provider must
    assemble the tensor itself (the engine then calls it). A merge of a
    distributed checkpoint copies such runs file to file.
    """

    def file_runs(self, tensor: PlannedTensor) -> list[tuple[Path, int, int]] | None: ...


@runtime_checkable
class RecyclesTensors(Protocol):
    """A provider that reuses the memory of the tensors it gave (GGUF's float32 buffers).

    ``recycle(value, futures)`` hands a tensor back once its writes are queued; its
    memory is free when the futures are done.
    """

    def recycle(self, value: Any, futures: list[Future[None]]) -> None: ...


@dataclass(frozen=True)
class ShardPlan:
    filename: str
    tensors: tuple[PlannedTensor, ...]
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def data_size(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def header(self) -> dict[str, Any]:
        """The JSON header, tensors laid out back to back in plan order."""
        header: dict[str, Any] = {}
        if self.metadata:
            header["__metadata__"] = dict(self.metadata)
        position = 0
        for tensor in self.tensors:
            header[tensor.name] = {
                "dtype": tensor.dtype,
                "shape": list(tensor.shape),
                "data_offsets": [position, position + tensor.nbytes],
            }
            position += tensor.nbytes
        return header

    def header_bytes(self) -> bytes:
        """Length prefix + compact JSON padded with spaces to 8 bytes, as safetensors does."""
        text = json.dumps(self.header(), separators=(",", ":"), ensure_ascii=False).encode()
        text += b" " * (-len(text) % HEADER_ALIGNMENT)
        return len(text).to_bytes(8, "little") + text

    @property
    def file_size(self) -> int:
        return len(self.header_bytes()) + self.data_size


@dataclass(frozen=True)
class ExportPlan:
    """Everything the export dialog shows before starting, and what the job follows."""

    kind: str
    source: str
    output: Path
    shards: tuple[ShardPlan, ...]
    max_shard_size: int
    copied_files: tuple[tuple[Path, str], ...] = ()
    generated_files: tuple[tuple[str, bytes], ...] = ()
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # Job state that is not part of the plan's description (e.g. the meta model).
    context: Any = field(default=None, compare=False, repr=False)

    @property
    def total_size(self) -> int:
        return sum(s.data_size for s in self.shards)

    @property
    def total_parameters(self) -> int:
        return sum(t.parameters for s in self.shards for t in s.tensors)

    @property
    def sharded(self) -> bool:
        return len(self.shards) > 1

    @property
    def tensors(self) -> list[PlannedTensor]:
        return [t for s in self.shards for t in s.tensors]

    def index_bytes(self) -> bytes | None:
        """The index exactly as save_pretrained writes it (sorted keys, indent 2, newline)."""
        if not self.sharded:
            return None
        index = {
            "metadata": {
                "total_parameters": self.total_parameters,
                "total_size": self.total_size,
            },
            "weight_map": {t.name: s.filename for s in self.shards for t in s.tensors},
        }
        return (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()

    @property
    def estimated_bytes(self) -> int:
        """Bytes the output folder will hold (shards, index, copied and generated files)."""
        index = self.index_bytes()
        return (
            sum(s.file_size for s in self.shards)
            + (len(index) if index else 0)
            + sum(_size(path) for path, _ in self.copied_files)
            + sum(len(data) for _, data in self.generated_files)
        )

    @property
    def bytes_to_write(self) -> int:
        """Tensor bytes: what progress counts."""
        return self.total_size

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "output": str(self.output),
            "max_shard_size": self.max_shard_size,
            "total_parameters": self.total_parameters,
            "total_size": self.total_size,
            "estimated_bytes": self.estimated_bytes,
            "shards": [
                {"file": s.filename, "tensors": len(s.tensors), "bytes": s.file_size}
                for s in self.shards
            ],
            "copied_files": [name for _, name in self.copied_files],
            "generated_files": [name for name, _ in self.generated_files],
            "raw_copy_bytes": sum(t.nbytes for t in self.tensors if t.raw_copy),
            "warnings": list(self.warnings),
            **self.extra,
        }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def split_into_shards(
    tensors: list[PlannedTensor],
    max_shard_size: int,
    metadata: dict[str, str] | None = None,
) -> tuple[ShardPlan, ...]:
    """huggingface_hub's greedy split, file names as save_pretrained gives them."""
    shard_list: list[list[PlannedTensor]] = []
    current: list[PlannedTensor] = []
    current_size = 0
    for tensor in tensors:
        if tensor.nbytes > max_shard_size:
            shard_list.append([tensor])
            continue
        if current_size + tensor.nbytes > max_shard_size:
            shard_list.append(current)
            current, current_size = [], 0
        current.append(tensor)
        current_size += tensor.nbytes
    if current:
        shard_list.append(current)
    if not shard_list:
        shard_list = [[]]
    meta = tuple((metadata or {}).items())
    count = len(shard_list)
    if count == 1:
        return (ShardPlan(WEIGHTS_NAME, tuple(shard_list[0]), meta),)
    return tuple(
        ShardPlan(f"model-{i:05d}-of-{count:05d}.safetensors", tuple(shard), meta)
        for i, shard in enumerate(shard_list, start=1)
    )
