"""A LoRA fine-tune: the adapter's size and the training peak with a frozen base.

Each targeted ``Linear`` of ``in`` inputs and ``out`` outputs gains ``A [r, in]`` and
``B [out, r]``: ``r * (in + out)`` trainable parameters, trained in float32 with Adam
(weights, gradients and two moments: 16 bytes each). The base stays frozen at the
weights' size (quantized bases as stored: QLoRA). The default targets are peft's own
defaults for the model type (``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING``),
copied for the common types so that peft need not be installed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ckpt_gui.core.model import Checkpoint, TensorInfo

if TYPE_CHECKING:
    from ckpt_gui.core.memory.weights import WeightSizer

BYTES_PER_TRAINED_PARAMETER = 16  # fp32 weight + gradient + Adam's two moments
PEFT_DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt2": ("c_attn",),
    "bert": ("query", "value"),
    "roberta": ("query", "value"),
    "t5": ("q", "v"),
    "falcon": ("query_key_value",),
    "bloom": ("query_key_value",),
    "gpt_neox": ("query_key_value",),
    "phi3": ("qkv_proj",),
}
FALLBACK_TARGETS = ("q_proj", "v_proj")  # llama, mistral, qwen2, gemma, phi, ... in peft


@dataclass(frozen=True)
class LoraEstimate:
    rank: int
    targets: tuple[str, ...]
    modules: int
    trainable_parameters: int
    base_bytes: int = 0
    skipped: tuple[str, ...] = ()

    @property
    def adapter_bytes(self) -> int:
        return 4 * self.trainable_parameters

    @property
    def training_peak_bytes(self) -> int:
        return self.base_bytes + BYTES_PER_TRAINED_PARAMETER * self.trainable_parameters

    def with_base(self, base_bytes: int) -> LoraEstimate:
        return dataclasses.replace(self, base_bytes=base_bytes)

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "targets": list(self.targets),
            "modules": self.modules,
            "trainable_parameters": self.trainable_parameters,
            "adapter_bytes": self.adapter_bytes,
            "base_bytes": self.base_bytes,
            "training_peak_bytes": self.training_peak_bytes,
            "skipped_modules": list(self.skipped),
        }


def default_targets(config: Any) -> tuple[str, ...]:
    model_type = config.get("model_type") if config else None
    return PEFT_DEFAULT_TARGETS.get(str(model_type), FALLBACK_TARGETS)


def estimate_lora(
    checkpoint: Checkpoint,
    tensors: list[TensorInfo],
    sizer: WeightSizer,
    rank: int,
    targets: tuple[str, ...] | None,
) -> LoraEstimate | None:
    """The LoRA adapter on ``targets`` (module names' last part), or None if none match."""
    chosen = targets or default_targets(checkpoint.config)
    shapes = {t.name: t.shape for t in tensors}
    owners = {t.name.rpartition(".")[0] for t in tensors}
    modules = sorted(m for m in owners if m.rsplit(".", 1)[-1] in chosen)
    trainable, count = 0, 0
    skipped: list[str] = []
    for module in modules:
        size = _linear_size(module, shapes, sizer)
        if size is None:
            skipped.append(module)
            continue
        out_features, in_features = size
        trainable += rank * (in_features + out_features)
        count += 1
    if not count:
        return None
    return LoraEstimate(rank, tuple(chosen), count, trainable, skipped=tuple(skipped))


def _linear_size(
    module: str, shapes: dict[str, tuple[int, ...]], sizer: WeightSizer
) -> tuple[int, int] | None:
    """(out, in) of a Linear from its stored tensors, plain or quantized."""
    weight = shapes.get(f"{module}.weight")
    quant = sizer.quantization
    quantized = quant.modules.get(module) if quant is not None else None
    if quantized is None:
        return (weight[0], weight[1]) if weight is not None and len(weight) == 2 else None
    if quantized.method == "gptq" and f"{module}.qweight" in shapes:
        out_features = shapes[f"{module}.qweight"][1]
        return out_features, quantized.parameters // out_features
    if quantized.method == "awq" and f"{module}.qweight" in shapes:
        in_features = shapes[f"{module}.qweight"][0]
        return quantized.parameters // in_features, in_features
    packed = shapes.get(f"{module}.weight_packed")
    if packed is not None and packed[0]:
        return packed[0], quantized.parameters // packed[0]
    scb = shapes.get(f"{module}.SCB")
    if scb is not None and scb[0]:
        return scb[0], quantized.parameters // scb[0]
    if weight is not None and len(weight) == 2 and weight[1] != 1:
        return weight[0], weight[1]
    return None  # bitsandbytes 4-bit: the shape is only in the quant state's data
