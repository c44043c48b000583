"""Quantized checkpoints of one tiny Llama (106,816 parameters), one folder per layout.

compressed-tensors checkpoints are written by the library itself (apply the scheme,
``ModelCompressor.compress_model``, ``save_pretrained``, ``update_config``). GPTQ, AWQ,
bitsandbytes, FP8 and MXFP4 need kernels or GPUs to be produced by their own tools,
so their tensors are written here in each library's documented layout, from the
model's real weights quantized round-to-nearest:

- GPTQ (AutoGPTQ / GPTQModel ``QuantLinear``, ``checkpoint_format: gptq``):
  ``qweight`` int32 ``[in * bits / 32, out]`` (packed along the input), ``qzeros`` int32
  ``[groups, out * bits / 32]``, ``scales`` fp16 ``[groups, out]``, ``g_idx`` int32 ``[in]``.
- AWQ (AutoAWQ ``WQLinear_GEMM``): ``qweight`` int32 ``[in, out * bits / 32]``, ``qzeros``
  int32 ``[groups, out * bits / 32]``, ``scales`` fp16 ``[groups, out]``.
- bitsandbytes 4-bit (``Params4bit`` + ``QuantState.as_dict(packed=True)``): ``weight``
  uint8 ``[n / 2, 1]``, ``weight.absmax`` fp32 ``[n / 64]``, ``weight.quant_map`` fp32
  ``[16]``, ``weight.quant_state.bitsandbytes__nf4`` uint8 (the JSON of the rest);
  8-bit (``Int8Params``): ``weight`` int8 ``[out, in]``, ``SCB`` fp32 ``[out]``.
- FP8 (transformers ``FP8Linear``, DeepSeek-V3 style): ``weight`` float8_e4m3fn
  ``[out, in]``, ``weight_scale_inv`` fp32 ``[ceil(out / 128), ceil(in / 128)]``, or a
  scalar per tensor when ``weight_block_size`` is null.
- MXFP4 (gpt-oss, ``write_mxfp4``): ``*_blocks`` uint8 ``[E, rows, cols / 32, 16]``,
  ``*_scales`` uint8 ``[E, rows, cols / 32]`` for the experts of a tiny GptOss.

``lm_head`` stays in float everywhere, as each tool leaves it by default.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

QUANT_LLAMA = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
}
LLAMA_PARAMETERS = 106_816
LINEAR_SUFFIXES = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)
LAYOUTS = (
    "gptq",
    "awq",
    "bnb-nf4",
    "bnb-int8",
    "fp8-block",
    "fp8-tensor",
    "compressed-pack",
    "compressed-fp8",
)


def llama(dtype: str = "bfloat16") -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**QUANT_LLAMA))
    return model.to(getattr(torch, dtype))


def linear_names(model: Any) -> list[str]:
    return [
        f"model.layers.{i}.{suffix}"
        for i in range(model.config.num_hidden_layers)
        for suffix in LINEAR_SUFFIXES
    ]


def write_layout(layout: str, folder: Path) -> Path:
    """Write ``layout`` of the tiny Llama into ``folder`` (config.json + model.safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    if layout.startswith("compressed"):
        return _compressed(folder, layout)
    model = llama()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    quant_config, convert = _LAYOUTS[layout]
    for module in linear_names(model):
        weight = state.pop(f"{module}.weight")
        state.update({f"{module}.{k}": v for k, v in convert(weight).items()})
    return _save(folder, model, state, quant_config)


def _save(
    folder: Path,
    model: Any,
    state: dict[str, Any],
    quant: dict[str, Any] | None,
    architecture: str = "LlamaForCausalLM",
) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    config = {**model.config.to_dict(), "architectures": [architecture]}
    if quant is not None:
        config["quantization_config"] = quant
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return folder


def _round_to_nearest(weight: Any, bits: int, group: int) -> tuple[Any, Any, Any]:
    """Asymmetric per-group RTN along the input: (codes [out, in], scales, zeros [out, groups])."""
    import torch

    out_features, in_features = weight.shape
    grouped = weight.float().reshape(out_features, in_features // group, group)
    low, high = grouped.amin(-1), grouped.amax(-1)
    top = 2**bits - 1
    scales = ((high - low) / top).clamp(min=1e-8)
    zeros = torch.round(-low / scales).clamp(0, top)
    codes = torch.round(grouped / scales[..., None] + zeros[..., None]).clamp(0, top)
    return codes.reshape(out_features, in_features).to(torch.int64), scales, zeros.to(torch.int64)


def _pack_int32(codes: Any, bits: int, dim: int) -> Any:
    """Pack ``32 / bits`` codes per int32 along ``dim``, lowest bits first (GPTQ's order)."""
    import torch

    per = 32 // bits
    codes = codes.movedim(dim, -1)
    shaped = codes.reshape(*codes.shape[:-1], codes.shape[-1] // per, per)
    shifts = torch.arange(per, dtype=torch.int64) * bits
    packed = (shaped << shifts).sum(-1)
    packed = torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
    return packed.movedim(-1, dim)


def _gptq(weight: Any, bits: int = 4, group: int = 32) -> dict[str, Any]:
    import torch

    codes, scales, zeros = _round_to_nearest(weight, bits, group)
    in_features = weight.shape[1]
    return {
        "qweight": _pack_int32(codes.t(), bits, 0),
        "qzeros": _pack_int32(zeros.t() - 1, bits, 1),  # AutoGPTQ stores zeros minus one
        "scales": scales.t().to(torch.float16),
        "g_idx": (torch.arange(in_features) // group).to(torch.int32),
    }


def _awq(weight: Any, bits: int = 4, group: int = 32) -> dict[str, Any]:
    import torch

    codes, scales, zeros = _round_to_nearest(weight, bits, group)
    return {
        "qweight": _pack_int32(codes.t(), bits, 1),
        "qzeros": _pack_int32(zeros.t(), bits, 1),
        "scales": scales.t().to(torch.float16),
    }


def _bnb_nf4(weight: Any) -> dict[str, Any]:
    import torch

    nf4 = torch.tensor(
        [-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0,
         0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.7230, 1.0]
    )  # fmt: skip
    flat = weight.float().reshape(-1, 64)
    absmax = flat.abs().amax(-1).clamp(min=1e-8)
    codes = (flat / absmax[:, None])[..., None].sub(nf4).abs().argmin(-1).reshape(-1)
    packed = (codes[0::2] << 4 | codes[1::2]).to(torch.uint8).reshape(-1, 1)
    state = {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": list(weight.shape)}
    state_bytes = torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)
    return {
        "weight": packed,
        "weight.absmax": absmax,
        "weight.quant_map": nf4,
        "weight.quant_state.bitsandbytes__nf4": state_bytes,
    }


def _bnb_int8(weight: Any) -> dict[str, Any]:
    import torch

    scb = weight.float().abs().amax(-1).clamp(min=1e-8)
    codes = torch.round(weight.float() / scb[:, None] * 127).to(torch.int8)
    return {"weight": codes, "SCB": scb}


def _fp8(weight: Any, block: tuple[int, int] | None) -> dict[str, Any]:
    import torch

    out_features, in_features = weight.shape
    if block is None:
        scale = weight.float().abs().amax() / 448
        return {
            "weight": (weight.float() / scale).to(torch.float8_e4m3fn),
            "weight_scale_inv": scale.reshape(()),
        }
    rows, cols = math.ceil(out_features / block[0]), math.ceil(in_features / block[1])
    scales = torch.empty(rows, cols)
    codes = torch.empty(out_features, in_features, dtype=torch.float8_e4m3fn)
    for r in range(rows):
        for c in range(cols):
            tile = weight.float()[
                r * block[0] : (r + 1) * block[0], c * block[1] : (c + 1) * block[1]
            ]
            scales[r, c] = tile.abs().amax().clamp(min=1e-8) / 448
            codes[r * block[0] : (r + 1) * block[0], c * block[1] : (c + 1) * block[1]] = (
                tile / scales[r, c]
            ).to(torch.float8_e4m3fn)
    return {"weight": codes, "weight_scale_inv": scales}


GPTQ_CONFIG = {
    "quant_method": "gptq",
    "bits": 4,
    "group_size": 32,
    "desc_act": False,
    "sym": False,
    "checkpoint_format": "gptq",
}
_LAYOUTS: dict[str, tuple[dict[str, Any], Any]] = {
    "gptq": (GPTQ_CONFIG, _gptq),
    "awq": (
        {"quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemm", "zero_point": True},
        _awq,
    ),
    "bnb-nf4": (
        {
            "quant_method": "bitsandbytes",
            "load_in_4bit": True,
            "load_in_8bit": False,
            "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_compute_dtype": "bfloat16",
            "bnb_4bit_use_double_quant": False,
        },
        _bnb_nf4,
    ),
    "bnb-int8": (
        {"quant_method": "bitsandbytes", "load_in_8bit": True, "load_in_4bit": False},
        _bnb_int8,
    ),
    "fp8-block": (
        {
            "quant_method": "fp8",
            "fmt": "e4m3",
            "activation_scheme": "dynamic",
            "weight_block_size": [128, 128],
        },
        lambda w: _fp8(w, (128, 128)),
    ),
    "fp8-tensor": (
        {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": None},
        lambda w: _fp8(w, None),
    ),
}


def _compressed(folder: Path, layout: str) -> Path:
    """Written by compressed-tensors itself; ``down_proj`` goes to its ``ignore`` list."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
        apply_quantization_config,
    )

    model = llama("float32")
    if layout == "compressed-pack":
        args = QuantizationArgs(
            num_bits=4, type="int", symmetric=True, strategy="group", group_size=32
        )
        fmt = "pack-quantized"
    else:
        args = QuantizationArgs(num_bits=8, type="float", symmetric=True, strategy="tensor")
        fmt = "float-quantized"
    config = QuantizationConfig(
        config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=args)},
        ignore=["lm_head", "re:.*mlp.down_proj"],
        format=fmt,
    )
    apply_quantization_config(model, config)
    for _, module in model.named_modules():
        if getattr(module, "quantization_scheme", None) is not None and hasattr(
            module, "weight_scale"
        ):
            weight = module.weight.data.float()
            if layout == "compressed-pack":
                grouped = weight.reshape(weight.shape[0], -1, 32).abs().amax(-1)
                module.weight_scale.data = (grouped / 7).to(module.weight_scale.dtype)
            else:
                module.weight_scale.data = (
                    (weight.abs().amax() / 448)
                    .reshape(module.weight_scale.shape)
                    .to(module.weight_scale.dtype)
                )
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=fmt)
    compressor.compress_model(model)
    model.save_pretrained(folder)
    compressor.update_config(folder)
    return folder


GPT_OSS = {
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "sliding_window": 8,
}
E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def gpt_oss() -> Any:
    import torch
    from transformers import GptOssConfig, GptOssForCausalLM

    torch.manual_seed(0)
    return GptOssForCausalLM(GptOssConfig(**GPT_OSS)).to(torch.bfloat16)


def write_mxfp4(folder: Path) -> Path:
    """gpt-oss's MXFP4 experts: per 32 values one UE8M0 exponent, two e2m1 codes a byte."""
    model = gpt_oss()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name in [k for k in state if k.endswith(("experts.gate_up_proj", "experts.down_proj"))]:
        weight = state.pop(name).float().transpose(1, 2)  # [E, out, in] as stored on disk
        blocks, scales = _mxfp4(weight)
        state[f"{name}_blocks"], state[f"{name}_scales"] = blocks, scales
    quant = {
        "quant_method": "mxfp4",
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    return _save(folder, model, state, quant, "GptOssForCausalLM")


def _mxfp4(weight: Any) -> tuple[Any, Any]:
    import torch

    experts, rows, cols = weight.shape
    grouped = weight.reshape(experts, rows, cols // 32, 32)
    exponent = torch.ceil(torch.log2(grouped.abs().amax(-1).clamp(min=1e-30) / 6))
    scaled = grouped / torch.pow(2.0, exponent)[..., None]
    table = torch.tensor(E2M1)
    codes = (scaled.abs()[..., None] - table).abs().argmin(-1) | ((scaled < 0).long() << 3)
    packed = (codes[..., 0::2] | codes[..., 1::2] << 4).to(torch.uint8)  # [E, rows, groups, 16]
    scales = (exponent + 127).clamp(0, 255).to(torch.uint8)
    return packed, scales
