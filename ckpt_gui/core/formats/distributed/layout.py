"""Where the pieces of one full tensor lie in a distributed checkpoint's files.

A DCP chunk is an N-dimensional box of the full tensor (``offsets``, ``sizes``);
a DeepSpeed fragment is a flat run of the tensor's elements. Both are a
``Piece``: where its bytes are in which file, how they are encoded, and where
they go in the full tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Piece:
    """One chunk or fragment of a full tensor.

    ``file`` is relative to the checkpoint folder; ``offset``/``length`` the
    byte range in it. ``encoding`` says how the range holds the values:
    "raw" (the elements, C order), "torch_save" (a small torch zip archive of
    one tensor, as DCP writes by default) or "safetensors" (the chunk is the
    tensor ``key`` of a safetensors file). ``box_offsets``/``box_sizes`` place an
    N-d chunk; ``flat_start``/``flat_count`` a 1-d fragment (DeepSpeed), whose
    first ``skip`` elements in the range belong to other tensors.
    """

    file: str
    offset: int
    length: int
    encoding: str = "raw"
    key: str = ""
    box_offsets: tuple[int, ...] | None = None
    box_sizes: tuple[int, ...] | None = None
    flat_start: int = 0
    flat_count: int = 0

    @property
    def elements(self) -> int:
        if self.box_sizes is not None:
            return math.prod(self.box_sizes)
        return self.flat_count


@dataclass(frozen=True)
class TensorLayout:
    """A full (unsharded) tensor: its name, dtype, global shape and pieces."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    pieces: tuple[Piece, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.file for p in self.pieces))


def covers_exactly(layout: TensorLayout) -> bool:
    """Do the pieces add up to the whole tensor (no gap, counted by elements)?"""
    return sum(p.elements for p in layout.pieces) == layout.numel
