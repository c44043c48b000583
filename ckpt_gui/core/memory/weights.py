"""Weight memory from the header: as stored, in another dtype, and the largest layer.

"In another dtype" follows accelerate's ``estimate-memory``: weights (quantized
ones at their real parameter count, bookkeeping dropped) take the dtype's size,
integer and bool tensors (ids, masks) keep theirs. Any other dtype counts as a
weight, so formats with their own quantized types (GGUF's Q4_K...) are sized by
their parameters too. The largest layer is what accelerate's
``calculate_maximum_sizes`` calls one: each numbered block of a module list (the
decoder layers, which transformers marks ``_no_split_modules``) whole, and
otherwise the smallest modules (those holding only tensors), found from the names
alone rather than from module classes, so no model is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.tree.build import ModuleNode, build_tree

# Bytes per parameter of the dtypes figures are given in (keys are JSON field names).
DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "bfloat16": 2,
    "float16": 2,
    "float8": 1,
    "int4": 0.5,
}
SAFETENSORS_NAMES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
KEEP_SIZE = frozenset({"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64"})


@dataclass(frozen=True)
class Layer:
    name: str
    stored_bytes: int
    bytes_by_dtype: dict[str, int]


class WeightSizer:
    """Bytes of any set of tensors, as stored or at a dtype, quantization-aware."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.quantization = checkpoint.quantization

    def parameters(self, tensor: TensorInfo) -> int:
        if self.quantization is None:
            return tensor.parameters
        return self.quantization.parameters.get(tensor.name, tensor.parameters)

    def at(self, tensor: TensorInfo, element_bytes: float | None) -> float:
        """``tensor``'s bytes at ``element_bytes`` per parameter (None: as stored)."""
        if element_bytes is None:
            return tensor.nbytes
        quant = self.quantization
        if quant is not None and tensor.name in quant.bookkeeping:
            return 0  # a dequantized model keeps no scales or zeros
        quantized = quant is not None and quant.module_of(tensor.name) is not None
        if quantized or tensor.dtype not in KEEP_SIZE:
            return self.parameters(tensor) * element_bytes
        return tensor.nbytes

    def total(self, tensors: list[TensorInfo], element_bytes: float | None) -> int:
        return round(sum(self.at(t, element_bytes) for t in tensors))

    def by_dtype(self, tensors: list[TensorInfo]) -> dict[str, int]:
        return {name: self.total(tensors, size) for name, size in DTYPE_BYTES.items()}


def largest_layer(checkpoint: Checkpoint, sizer: WeightSizer) -> Layer | None:
    """The largest unit accelerate would place whole (by float32 size, as it ranks them)."""
    root = build_tree(checkpoint.tensors, checkpoint.quantization)
    best: Layer | None = None
    best_key = -1
    for node in _units(root):
        tensors = [leaf.tensor for leaf in node.walk() if leaf.tensor is not None]
        key = sizer.total(tensors, DTYPE_BYTES["float32"])
        if key > best_key:
            best_key = key
            best = Layer(node.path, sizer.total(tensors, None), sizer.by_dtype(tensors))
    return best


def _units(node: ModuleNode) -> Iterator[ModuleNode]:
    for child in node.children:
        if child.is_tensor or all(c.is_tensor for c in child.children):
            yield child
        elif child.children and all(c.name.isdigit() for c in child.children):
            yield from child.children  # a module list: each block is one layer
        else:
            yield from _units(child)
