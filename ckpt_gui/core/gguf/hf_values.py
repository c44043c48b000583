"""One GGUF tensor's values as transformers holds them: dequantized, then processed.

``hf_values_into`` fills a flat float32 array with exactly what
``from_pretrained(dir, gguf_file=...)`` puts in the model for this tensor, following
the steps ``processors.steps`` recorded in the tensor table: llama's q/k rows are
read in transformers' order straight from the file; transposes, Bloom's qkv
regrouping, norm offsets, ``log(-x)`` and MoE ``gate_up_proj`` concatenation work
on the dequantized tensor, as transformers' processors do (same numpy operations, in
float32, so the results are the same bits). One tensor in memory at a time (plus,
for a computed tensor, one stored part of it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

import numpy as np

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.gguf.naming import table_entry
from ckpt_gui.core.gguf.values import PermutedRows, StoredSpan, read_values_into
from ckpt_gui.core.model import Checkpoint, TensorInfo
from ckpt_gui.core.positional_io import O_BINARY, advise_will_need


def hf_values_into(checkpoint: Checkpoint, tensor: TensorInfo, out: np.ndarray[Any, Any]) -> None:
    """All values of ``tensor`` (float32, transformers' layout) into flat ``out``."""
    entry = table_entry(checkpoint, tensor)
    parts = entry.get("parts")
    if parts:
        _concatenate(checkpoint, tensor, parts, out)
        return
    stored_shape = tuple(entry.get("gguf_shape") or tensor.shape)
    stored = dataclasses.replace(tensor, shape=stored_shape)
    heads = entry.get("permuted_heads")
    if entry.get("transpose"):
        values = _read(checkpoint, stored, None)
        np.copyto(out.reshape(tensor.shape), values.reshape(stored_shape).T)
    elif entry.get("qkv_heads"):
        values = _read(checkpoint, stored, None)
        rows = stored_shape[0]
        order = bloom_row_order(rows, int(entry["qkv_heads"]))
        np.take(values.reshape(rows, -1), order, axis=0, out=out.reshape(rows, -1))
    else:
        _read(checkpoint, stored, heads if isinstance(heads, int) else None, out)
    add = entry.get("add")
    if add:
        np.add(out, np.float32(add), out=out)  # transformers: weights - 1, in float32
    if entry.get("log_neg"):
        np.negative(out, out=out)  # transformers: np.log(-weights)
        np.log(out, out=out)


def bloom_row_order(rows: int, heads: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """BloomTensorProcessor's regrouping: q, k, v blocks -> per head (q, k, v)."""
    embed = rows // 3
    order: np.ndarray[Any, np.dtype[np.int64]] = (
        np.arange(rows, dtype=np.int64).reshape(3, heads, embed // heads).swapaxes(0, 1).ravel()
    )
    return order


def _concatenate(
    checkpoint: Checkpoint, tensor: TensorInfo, parts: list[dict[str, Any]], out: Any
) -> None:
    """Qwen2MoeTensorProcessor: gate then up, side by side on dim 1 of ``gate_up_proj``."""
    view = out.reshape(tensor.shape)
    start = 0
    for part in parts:
        info = TensorInfo(
            str(part["gguf_name"]),
            str(part["type"]),
            tuple(int(d) for d in part["shape"]),
            int(part["nbytes"]),
            str(part["file"]),
            int(part["offset"]),
        )
        width = info.shape[1]
        view[:, start : start + width] = _read(checkpoint, info, None).reshape(info.shape)
        start += width


def _read(
    checkpoint: Checkpoint, tensor: TensorInfo, heads: int | None, out: Any = None
) -> np.ndarray[Any, Any]:
    if out is None:
        out = np.empty(tensor.parameters, dtype=np.float32)
    path = checkpoint.path_of(tensor)
    try:
        fd = os.open(path, os.O_RDONLY | O_BINARY)
    except OSError as exc:
        raise CheckpointError(path, exc.strerror or str(exc)) from None
    try:
        # The whole tensor is wanted: let the kernel read it while the first pieces
        # are dequantized (a cold 1.2 GB file took 3 s longer without).
        with contextlib.suppress(OSError):
            advise_will_need(fd, int(tensor.offset or 0), tensor.nbytes)
        source = (
            PermutedRows(fd, path, tensor, heads)
            if heads is not None
            else StoredSpan(fd, path, tensor)
        )
        read_values_into(source, tensor, out)
    finally:
        os.close(fd)
    result: np.ndarray[Any, Any] = out
    return result
