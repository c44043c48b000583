"""What a model built from a config expects to load: keys, shapes, dtypes and its rules.

The model is built on the meta device (no memory for weights). transformers and torch
are imported only inside ``build_expected``, so importing this module stays cheap.
Remote code is never executed: configs with ``auto_map`` or a model type transformers
does not know are refused with a message suggesting a built-in architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ckpt_gui.core.check.renaming import PlainRenaming
from ckpt_gui.core.check.resolved import ResolvedConfig, apply_overrides
from ckpt_gui.core.check.size_guard import BuildBudget, build_budget
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.gc_pause import collector_paused
from ckpt_gui.core.quiet import quiet_on_this_thread


@dataclass(frozen=True)
class ExpectedTensor:
    name: str
    shape: tuple[int, ...]
    dtype: str  # safetensors spelling (F32, BF16, I64...) of the dtype the model will hold


@dataclass
class ExpectedModel:
    """The model side of a comparison.

    ``tensors`` are the persistent state-dict entries (what ``from_pretrained`` reports
    as missing when absent). ``tied`` maps each tied target to its source, in the
    order transformers ties them. ``conversions`` holds transformers' own
    WeightRenaming/WeightConverter objects (empty when loaded from the cache);
    ``plain_renamings`` the same rules replayable without transformers, or None when
    some rule is not a plain renaming (then ``conversions`` must be used).
    """

    architecture: str
    model_type: str
    base_model_prefix: str | None
    tensors: dict[str, ExpectedTensor]
    tied: dict[str, str]
    non_persistent_buffers: tuple[str, ...]
    ignore_missing: tuple[str, ...]
    ignore_unexpected: tuple[str, ...]
    conversions: list[Any] = field(default_factory=list)
    warnings: tuple[str, ...] = ()
    plain_renamings: tuple[PlainRenaming, ...] | None = None
    hf_config: Any = None  # the transformers config object, for converters (not cached)
    # Dotted names of the nn.Linear modules: what a quantizer replaces. None when the
    # description came from a template (which does not record module types).
    linear_modules: tuple[str, ...] | None = None


def build_expected(
    config: ResolvedConfig,
    key_mapping: dict[str, str] | None = None,
    budget: BuildBudget | None = None,
) -> ExpectedModel:
    """Build ``config``'s model on the meta device and describe what it expects.

    The build is stopped once it exceeds ``budget`` (see size_guard); callers refuse
    configs of an impossible size first (``expected_cache.load_expected``).
    """
    refuse_remote_code(config)
    with collector_paused():  # the imports take seconds; the collector adds 15%
        import torch
        import transformers

    model_class, values, notes = _model_class_and_values(config, transformers)
    config_class = model_class.config_class
    try:
        with quiet_on_this_thread(), collector_paused():
            # from_dict never runs remote code; the model type was checked above.
            hf_config = config_class.from_dict(dict(values))
            with build_budget(budget, config.source), torch.device("meta"):
                model = model_class(hf_config)
    except CheckpointError:
        raise
    except Exception as exc:
        message = " ".join(str(exc).split())[:300]
        raise CheckpointError(
            config.source, f"cannot build {model_class.__name__} from this config: {message}"
        ) from None
    return describe_model(model, key_mapping, tuple(notes))


def describe_model(
    model: Any, key_mapping: dict[str, str] | None = None, notes: tuple[str, ...] = ()
) -> ExpectedModel:
    """Describe an already built (meta) transformers model."""
    import torch

    from ckpt_gui.core.dtypes import torch_dtype_name

    state = model.state_dict()
    linear = tuple(n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    tensors = {
        name: ExpectedTensor(
            name, tuple(int(d) for d in value.shape), torch_dtype_name(value.dtype)
        )
        for name, value in state.items()
    }
    buffers = [name for name, _ in model.named_buffers()]
    ignore_unexpected = set(model._keys_to_ignore_on_load_unexpected or ())
    # transformers adds these two itself in _adjust_missing_and_unexpected_keys: old
    # checkpoints saved buffers that are now non-persistent.
    if any(name.endswith("rotary_emb.inv_freq") for name in buffers):
        ignore_unexpected.add(r"rotary_emb\.inv_freq")
    if any(name.endswith("position_ids") for name in buffers):
        ignore_unexpected.add(r"(^|\.)position_ids$")
    conversions = _conversions(model, key_mapping)
    plain = [PlainRenaming.from_transform(c) for c in conversions]
    return ExpectedModel(
        architecture=type(model).__name__,
        model_type=str(model.config.model_type),
        # As is: transformers passes it unchanged to its renaming (even "").
        base_model_prefix=model.base_model_prefix,
        tensors=tensors,
        tied=dict(getattr(model, "all_tied_weights_keys", None) or {}),
        non_persistent_buffers=tuple(name for name in buffers if name not in state),
        ignore_missing=tuple(sorted(model._keys_to_ignore_on_load_missing or ())),
        ignore_unexpected=tuple(sorted(ignore_unexpected)),
        conversions=conversions,
        warnings=notes,
        plain_renamings=None if None in plain else tuple(p for p in plain if p is not None),
        hf_config=model.config,
        linear_modules=linear,
    )


def refuse_remote_code(config: ResolvedConfig) -> None:
    """Configs that need code from the repo are never executed."""
    if "auto_map" in config.values and config.architecture in (None, *_declared(config)):
        raise CheckpointError(
            config.source,
            "config needs custom code (auto_map), which ckpt-gui never runs; compare with a "
            "built-in architecture instead, e.g. --config LlamaForCausalLM",
        )


def _declared(config: ResolvedConfig) -> list[str]:
    architectures = config.values.get("architectures")
    return (
        [a for a in architectures if isinstance(a, str)] if isinstance(architectures, list) else []
    )


def _model_class_and_values(
    config: ResolvedConfig, transformers: Any
) -> tuple[Any, dict[str, Any], list[str]]:
    from transformers.models.auto import configuration_auto

    notes: list[str] = []
    values = dict(config.values)
    model_type = config.model_type
    user_named = config.architecture is not None and config.architecture not in _declared(config)
    if config.architecture is not None:
        model_class: Any = getattr(transformers, config.architecture, None)
        if not _is_model_class(model_class, transformers):
            if user_named:
                raise CheckpointError(
                    config.architecture,
                    "not a model architecture transformers knows (e.g. LlamaForCausalLM, BertModel)",
                )
            raise CheckpointError(
                config.source,
                f"config names architecture {config.architecture}, which transformers does not "
                "have (custom code?); compare with a built-in architecture instead, e.g. "
                "--config LlamaForCausalLM",
            )
        wanted_type = model_class.config_class.model_type
        if model_type != wanted_type:
            if model_type is not None:
                notes.append(
                    f"config is for model type {model_type!r}, {config.architecture} needs "
                    f"{wanted_type!r}: using {wanted_type} defaults"
                )
            values = apply_overrides({"model_type": wanted_type}, config.overrides)
        return model_class, values, notes
    if model_type is None:
        raise CheckpointError(
            config.source,
            "config has no model_type and no architectures; pass an architecture name",
        )
    known_types: Any = getattr(configuration_auto, "CONFIG_MAPPING_NAMES", {})
    if model_type not in known_types:
        raise CheckpointError(
            config.source,
            f"model type {model_type!r} is not in transformers: the config needs custom code, "
            "which ckpt-gui never runs; compare with a built-in architecture instead, e.g. "
            "--config LlamaForCausalLM",
        )
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    name = MODEL_MAPPING_NAMES.get(model_type)
    model_class = getattr(transformers, name, None) if isinstance(name, str) else None
    if not _is_model_class(model_class, transformers):
        raise CheckpointError(
            config.source,
            f"config names no architecture and model type {model_type!r} has no base model",
        )
    notes.append(f"config names no architecture: using the base model {name}")
    return model_class, values, notes


def _is_model_class(candidate: Any, transformers: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, transformers.PreTrainedModel)


def _conversions(model: Any, key_mapping: dict[str, str] | None) -> list[Any]:
    """transformers' own rename rules for this model (legacy renames included)."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
    except ImportError:  # an older or newer layout: matching.py falls back to its own rules
        return []
    return list(get_model_conversion_mapping(model, key_mapping, None))


def available_architectures() -> list[str]:
    """Model classes in the transformers registry, for an architecture picker.

    Imports transformers (seconds): call it from a worker thread.
    """
    from transformers.models.auto import modeling_auto

    names: set[str] = set()
    for attribute in dir(modeling_auto):
        if attribute.startswith("MODEL_") and attribute.endswith("MAPPING_NAMES"):
            for value in getattr(modeling_auto, attribute).values():
                candidates = value if isinstance(value, list | tuple) else (value,)
                names.update(c for c in candidates if isinstance(c, str))
    return sorted(names)


def default_config_values(architecture: str) -> dict[str, Any]:
    """The architecture's default config values, for editing before comparing
    (pass the edited ones to ``resolve_config`` as overrides)."""
    import transformers

    model_class = getattr(transformers, architecture, None)
    if not _is_model_class(model_class, transformers):
        raise CheckpointError(
            architecture, "not a model architecture transformers knows (e.g. LlamaForCausalLM)"
        )
    assert model_class is not None
    with quiet_on_this_thread():
        values: dict[str, Any] = model_class.config_class().to_dict()
    return values
