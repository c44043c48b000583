"""A model described from its config alone, for memory estimates without weights.

The tensors are those the config check expects (``check.expected_cache``: a shipped
template or a meta-device build), with the quantized keys the config declares,
without tied copies (one storage, as accelerate counts them). Floating tensors take
the config's ``dtype``, as ``from_pretrained`` would give them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ckpt_gui.core.check.config_source import resolve_config
from ckpt_gui.core.check.expected_cache import load_expected
from ckpt_gui.core.check.matching import declared_dtype
from ckpt_gui.core.check.quantized_keys import with_quantized_keys
from ckpt_gui.core.dtypes import FLOAT_DTYPES, nbytes_for
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import Checkpoint, TensorInfo


def is_config_file(path: Path) -> bool:
    """A JSON file that describes a model rather than indexing weights."""
    if path.suffix != ".json" or not path.is_file() or path.name.endswith(".index.json"):
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and ("model_type" in data or "architectures" in data)


def checkpoint_from_config(spec: str | Path) -> Checkpoint:
    """The tensors a model built from ``spec`` (config.json, folder, architecture) holds."""
    config = resolve_config(str(spec))
    expected = load_expected(config)
    expected = with_quantized_keys(expected, config.values, {})
    dtype = declared_dtype(config)
    tied = set(expected.tied)
    tensors = []
    for name, tensor in expected.tensors.items():
        if name in tied:
            continue
        stored = dtype if tensor.dtype in FLOAT_DTYPES else tensor.dtype
        tensors.append(
            TensorInfo(name, stored, tensor.shape, nbytes_for(stored, math.prod(tensor.shape)), "")
        )
    if not tensors:
        raise CheckpointError(str(spec), "the config describes a model without tensors")
    return Checkpoint(
        source=str(spec),
        format="config",
        tensors=tuple(tensors),
        files=(),
        config=dict(config.values),
        warnings=("estimated from the config alone: no weight file was read",),
    )
