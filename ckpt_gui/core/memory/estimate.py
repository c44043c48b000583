"""How much memory a model needs: weights, largest layer, Adam training, KV cache, LoRA.

    estimate = estimate_memory(open_target("org/model"), context=8192, batch=4)

Everything comes from the header and config.json: no weight is read and, for
safetensors sources, torch is not imported. Training follows accelerate's
``estimate_training_usage`` (batch size 1, activations not counted): float32 Adam
peaks at 4x the float32 weights (weights, gradients, two moments, step), bfloat16
mixed precision at 2x. Beyond accelerate: quantized weights at their stored size,
the KV cache (``kv_cache.py``) and a LoRA fine-tune (``lora.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ckpt_gui.core.dtypes import USER_DTYPE_NAMES
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.memory.kv_cache import KvCacheShape, default_context, kv_cache_shape
from ckpt_gui.core.memory.lora import LoraEstimate, estimate_lora
from ckpt_gui.core.memory.weights import DTYPE_BYTES, Layer, WeightSizer, largest_layer
from ckpt_gui.core.model import Checkpoint, TensorInfo

DEFAULT_KV_DTYPE = "bfloat16"
# Names users type -> the JSON names of DTYPE_BYTES.
DTYPE_ALIASES = {
    **{
        k: {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[v]
        for k, v in USER_DTYPE_NAMES.items()
    },
    "fp8": "float8",
    "float8": "float8",
    "int8": "float8",
    "int4": "int4",
}


def dtype_name(text: str) -> str:
    """``bf16``/``bfloat16``/``fp8``/``int4``... -> the name used in the figures."""
    name = DTYPE_ALIASES.get(text.lower())
    if name is None:
        raise CheckpointError(text, f"unknown dtype; use one of {', '.join(DTYPE_BYTES)}")
    return name


@dataclass(frozen=True)
class TrainingUsage:
    """accelerate's four figures for one precision; the peak is their maximum."""

    model: int
    gradients: int
    optimizer: int
    step: int

    @property
    def peak(self) -> int:
        return max(self.model, self.gradients, self.optimizer, self.step)

    def to_json(self) -> dict[str, int]:
        return {
            "model": self.model,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "step": self.step,
            "peak": self.peak,
        }


def training_usage(float32_bytes: int, precision: str) -> TrainingUsage:
    """accelerate's ``estimate_training_usage`` for a model of ``float32_bytes``."""
    half = float32_bytes // 2
    if precision == "float32":
        return TrainingUsage(float32_bytes, float32_bytes, 2 * float32_bytes, 4 * float32_bytes)
    # Mixed precision: fp32 master weights, fp32 + half gradients, two fp32 moments.
    return TrainingUsage(float32_bytes, float32_bytes + half, 2 * float32_bytes, 2 * float32_bytes)


@dataclass(frozen=True)
class MemoryEstimate:
    source: str
    scope: str  # "" for the whole model, else the module path the figures cover
    parameters: int
    stored_bytes: int
    dtype: str | None  # the --dtype asked for; None = as stored
    weights_bytes: int
    weights_bytes_by_dtype: dict[str, int]
    largest_layer: Layer | None
    training: dict[str, TrainingUsage]
    kv: KvCacheShape | None
    kv_dtype: str
    context: int | None
    batch: int
    lora: LoraEstimate | None
    quantization: str | None
    warnings: tuple[str, ...] = field(default=())

    @property
    def kv_cache_bytes_per_token(self) -> int | None:
        return self.kv.bytes_per_token(DTYPE_BYTES[self.kv_dtype]) if self.kv else None

    @property
    def kv_cache_bytes(self) -> int | None:
        if self.kv is None or self.context is None:
            return None
        return self.kv.bytes_for(self.context, self.batch, DTYPE_BYTES[self.kv_dtype])

    @property
    def largest_layer_bytes(self) -> int | None:
        layer = self.largest_layer
        if layer is None:
            return None
        return layer.bytes_by_dtype[self.dtype] if self.dtype else layer.stored_bytes

    @property
    def inference_bytes(self) -> int:
        return self.weights_bytes + (self.kv_cache_bytes or 0)

    def to_json(self) -> dict[str, Any]:
        layer = self.largest_layer
        return {
            "source": self.source,
            "scope": self.scope,
            "parameters": self.parameters,
            "quantization": self.quantization,
            "dtype": self.dtype or "stored",
            "weights_bytes": self.weights_bytes,
            "stored_bytes": self.stored_bytes,
            "weights_bytes_by_dtype": self.weights_bytes_by_dtype,
            "largest_layer": layer.name if layer else None,
            "largest_layer_bytes": self.largest_layer_bytes,
            "largest_layer_bytes_by_dtype": layer.bytes_by_dtype if layer else None,
            "training_adam_peak_bytes": {k: v.peak for k, v in self.training.items()},
            "training_adam": {k: v.to_json() for k, v in self.training.items()},
            "kv_dtype": self.kv_dtype,
            "context": self.context,
            "batch": self.batch,
            "kv_cache": self.kv.to_json() if self.kv else None,
            "kv_cache_bytes_per_token": self.kv_cache_bytes_per_token,
            "kv_cache_bytes": self.kv_cache_bytes,
            "inference_bytes": self.inference_bytes,
            "lora": self.lora.to_json() if self.lora else None,
            "warnings": list(self.warnings),
        }


def estimate_memory(
    checkpoint: Checkpoint,
    dtype: str | None = None,
    context: int | None = None,
    batch: int = 1,
    kv_dtype: str = DEFAULT_KV_DTYPE,
    lora_rank: int = 8,
    lora_targets: tuple[str, ...] | None = None,
    scope: str | tuple[str, ...] = "",
) -> MemoryEstimate:
    """The figures for ``checkpoint``, or for the module(s) ``scope`` names (a path, or
    several: the blocks a grouped tree row stands for)."""
    if batch < 1 or (context is not None and context < 1):
        raise CheckpointError(checkpoint.source, "context and batch must be at least 1")
    scopes = (scope,) if isinstance(scope, str) else scope
    scopes = tuple(p for p in scopes if p)
    whole = not scopes
    tensors = _in_scope(checkpoint, scopes)
    sizer = WeightSizer(checkpoint)
    by_dtype = sizer.by_dtype(tensors)
    stored = sizer.total(tensors, None)
    warnings = list(checkpoint.all_warnings)
    kv, kv_notes = kv_cache_shape(checkpoint.config) if whole else (None, [])
    warnings += kv_notes
    quant = checkpoint.quantization
    lora = estimate_lora(checkpoint, tensors, sizer, lora_rank, lora_targets)
    weights = by_dtype[dtype] if dtype else stored
    if lora is not None:
        lora = lora.with_base(weights)
    return MemoryEstimate(
        source=checkpoint.source,
        scope=", ".join(scopes),
        parameters=sum(sizer.parameters(t) for t in tensors),
        stored_bytes=stored,
        dtype=dtype,
        weights_bytes=weights,
        weights_bytes_by_dtype=by_dtype,
        largest_layer=largest_layer(checkpoint, sizer) if whole else None,
        training={p: training_usage(by_dtype["float32"], p) for p in ("float32", "bfloat16")},
        kv=kv,
        kv_dtype=kv_dtype,
        context=context if context is not None else default_context(checkpoint.config),
        batch=batch,
        lora=lora,
        quantization=quant.scheme.describe() if quant is not None else None,
        warnings=tuple(warnings),
    )


def _in_scope(checkpoint: Checkpoint, scopes: tuple[str, ...]) -> list[TensorInfo]:
    if not scopes:
        return list(checkpoint.tensors)
    # A set and the name's own dotted prefixes: a scope of many paths (a range row of
    # a flat 200,000-tensor tree names 1,000) costs a few lookups per tensor.
    wanted = set(scopes)

    def inside(name: str) -> bool:
        cut = len(name)
        while cut > 0:
            if name[:cut] in wanted:
                return True
            cut = name.rfind(".", 0, cut)
        return False

    tensors = [t for t in checkpoint.tensors if inside(t.name)]
    if not tensors:
        raise CheckpointError(checkpoint.source, f"no tensor under {', '.join(scopes)!r}")
    return tensors
