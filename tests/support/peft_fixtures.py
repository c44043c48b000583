"""Tiny base models and LoRA adapters made by peft itself, and peft's own answers.

``make_adapter`` trains nothing: ``init_lora_weights=False`` gives random A and B
(peft's default leaves B at zero, which would make every merge a no-op), so a
merge that forgets a scale, a transpose or a module shows.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

TINY = {
    "vocab_size": 96,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32,
    "tie_word_embeddings": False,
}


def tiny_base(seed: int = 0, **overrides: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**TINY, **overrides}))


def save_base(folder: Path, seed: int = 0, dtype: Any = None, **overrides: Any) -> Path:
    model = tiny_base(seed, **overrides)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(folder)
    return folder


def save_adapter(
    folder: Path,
    base_folder: Path | None = None,
    seed: int = 1,
    base_model: Any = None,
    **lora: Any,
) -> Path:
    """A LoRA adapter for the base saved at ``base_folder`` (or ``base_model``)."""
    import torch
    from peft import LoraConfig, get_peft_model

    if base_model is None:
        assert base_folder is not None
        base_model = load_base(base_folder)
    settings = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], **lora}
    settings.setdefault("init_lora_weights", False)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base_model, LoraConfig(**settings))
        for name, param in model.named_parameters():
            # DoRA starts its magnitudes at the weight norm and modules_to_save as
            # copies of the base: move both off, as training would.
            if "lora_magnitude_vector" in name:
                param.data.mul_(1.0 + 0.1 * torch.rand_like(param))
            elif "modules_to_save" in name:
                param.data.add_(0.01 * torch.randn_like(param))
        model.save_pretrained(folder)
    if base_folder is not None:
        _set_base_name(folder, str(base_folder))
    return folder


def _set_base_name(folder: Path, name: str) -> None:
    import json

    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = name
    path.write_text(json.dumps(config, indent=2))


def load_base(folder: Path, dtype: Any = None) -> Any:
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)


def peft_merged_state(base_folder: Path, adapter_folder: Path, dtype: Any = None) -> dict[str, Any]:
    """The merge oracle: peft's ``merge_and_unload`` on the same pair."""
    from peft import PeftModel

    base = load_base(base_folder, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        merged = PeftModel.from_pretrained(base, adapter_folder).merge_and_unload()
    return {k: v.detach().clone() for k, v in merged.state_dict().items()}


def _saved_name(key: str, adapter_name: str = "default") -> str:
    """peft's in-model key (``lora_A.default.weight``) as saved (``lora_A.weight``)."""
    key = key.replace(f".lora_magnitude_vector.{adapter_name}.weight", ".lora_magnitude_vector")
    key = key.replace(f".modules_to_save.{adapter_name}.", ".")
    return key.replace(f".{adapter_name}.", ".").removesuffix(f".{adapter_name}")


def peft_fit(base_folder: Path, adapter_folder: Path) -> dict[str, Any]:
    """What peft reports when it loads the adapter onto the base.

    ``error``: the exception ``get_peft_model`` raises (e.g. no target module found);
    ``mismatched``: saved keys whose size peft refuses; ``missing``: LoRA keys peft
    expected and did not find; ``unexpected``: saved keys peft had nowhere to put.
    """
    from peft import PeftConfig, get_peft_model
    from peft.utils import load_peft_weights
    from peft.utils.save_and_load import set_peft_model_state_dict

    base = load_base(base_folder)
    config = PeftConfig.from_pretrained(adapter_folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = get_peft_model(base, config)
    except ValueError as exc:
        return {"error": str(exc), "mismatched": set(), "missing": set(), "unexpected": set()}
    weights = load_peft_weights(str(adapter_folder))
    mismatched: set[str] = set()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = set_peft_model_state_dict(model, dict(weights))
    except RuntimeError as exc:
        mismatched = {_saved_name(k) for k in re.findall(r"size mismatch for ([\w.]+):", str(exc))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = set_peft_model_state_dict(model, dict(weights), ignore_mismatched_sizes=True)
    missing = {
        _saved_name(k) for k in result.missing_keys if "lora_" in k and ".default" in k
    } - mismatched
    unexpected = {_saved_name(k) for k in result.unexpected_keys}
    return {"error": None, "mismatched": mismatched, "missing": missing, "unexpected": unexpected}
