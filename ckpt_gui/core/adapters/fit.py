"""Does this LoRA adapter fit this base model? The answer peft gives only after a full load.

    report = fit_adapter(open_target("adapter/"), resolve_config("base/"))

The base is described by the same machinery as ``check`` (``load_expected``: a meta
build, a template or the cache), and the answer is a ``MatchReport`` in the
adapter's own key names, so it prints and colours like any checkpoint comparison:

- unexpected: an adapter tensor whose module is not in the base, or is in it but
  not a target of ``target_modules`` (peft would have no LoRA layer to load it into);
- mismatched: ``lora_A`` must be r x in, ``lora_B`` out x r (``lora_embedding_A`` r x
  vocabulary, ``lora_embedding_B`` dim x r), a DoRA magnitude holds one value per
  output, a ``modules_to_save`` copy the base tensor's shape; r per module follows
  ``rank_pattern``;
- missing: a module peft would adapt (``target_modules`` matches it) that the
  adapter has no weights for (peft's "missing adapter keys").
"""

from __future__ import annotations

from typing import Any

from ckpt_gui.core.adapters.keys import PREFIX, base_name, classify
from ckpt_gui.core.adapters.settings import LoraSettings, unsupported_message
from ckpt_gui.core.check.expected import ExpectedModel
from ckpt_gui.core.check.matching import MatchReport, Mismatch, declared_dtype
from ckpt_gui.core.check.resolved import ResolvedConfig
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.model import Checkpoint


def require_lora(checkpoint: Checkpoint) -> LoraSettings:
    """The adapter's settings, or the one-line reason it cannot be checked or merged."""
    if checkpoint.adapter is None:
        from ckpt_gui.core.formats.adapter import looks_like_adapter_weights, missing_config_error

        if looks_like_adapter_weights(checkpoint):
            raise missing_config_error(checkpoint)
        raise CheckpointError(checkpoint.source, "is not a peft adapter (no adapter_config.json)")
    settings: LoraSettings = checkpoint.adapter.settings
    if not settings.supported:
        raise CheckpointError(checkpoint.source, unsupported_message(settings))
    return settings


def fit_adapter(
    checkpoint: Checkpoint, config: ResolvedConfig, expected: ExpectedModel | None = None
) -> MatchReport:
    """Compare an adapter's tensors with the LoRA layers peft would build on the base."""
    settings = require_lora(checkpoint)
    if expected is None:
        from ckpt_gui.core.check.expected_cache import load_expected

        expected = load_expected(config)
    base = {name: t.shape for name, t in expected.tensors.items()}
    vocab = _vocab_size(config)
    wanted = expected_adapter_shapes(settings, base, vocab)
    missing: list[str] = []
    unexpected: list[str] = []
    mismatched: list[Mismatch] = []
    status: dict[str, str] = {}
    present = {t.name for t in checkpoint.tensors}
    for tensor in checkpoint.tensors:
        shape = wanted.get(tensor.name)
        key = classify(tensor.name)
        if shape is None and key is not None and key.replaces is not None:
            # A copy of a base tensor (modules_to_save, bias="all"): loads where it names.
            shape = base.get(key.replaces)
        if shape is None:
            unexpected.append(tensor.name)
            status[tensor.name] = "unexpected"
        elif shape != tensor.shape and shape != ():
            mismatched.append(Mismatch(tensor.name, tensor.name, tensor.shape, shape))
            status[tensor.name] = "mismatched"
        else:
            status[tensor.name] = "ok"
    for name in sorted(set(wanted) - present):
        role = _role(name)
        if role in _REQUIRED_ROLES:
            missing.append(name)
            status[name] = "missing"
    warnings = list(expected.warnings)
    if not wanted:
        warnings.append(
            f"target_modules {_targets_text(settings)} match no module of {expected.architecture} "
            "(peft refuses to load such an adapter)"
        )
    untargeted = sorted(
        {
            k.module
            for n in unexpected
            if (k := classify(n)) is not None
            and k.replaces is None
            and f"{k.module}.weight" in base
        }
    )
    if untargeted:
        warnings.append(
            f"{len(untargeted)} modules have LoRA weights but are not in target_modules, "
            f"e.g. {untargeted[0]}"
        )
    return MatchReport(
        checkpoint=checkpoint.source,
        config=config,
        architecture=expected.architecture,
        missing=tuple(missing),
        unexpected=tuple(sorted(unexpected)),
        mismatched=tuple(sorted(mismatched, key=lambda m: m.key)),
        dtype_differences=(),
        suggestions=(),
        status_by_key={k: KeyStatus(v) for k, v in sorted(status.items())},
        ghost_keys={name: name for name in missing},
        renamed={},
        tied={},
        ignored_unexpected=(),
        ignored_missing=(),
        unexpected_sources={name: name for name in unexpected},
        expected_count=len(wanted),
        model_dtype=declared_dtype(config),
        warnings=tuple(warnings),
    )


def in_base_naming(report: MatchReport) -> MatchReport:
    """The report with adapter keys in the base's naming (``base_model.model.`` removed),
    as the adapter's tensors appear in the base's tree."""
    import dataclasses

    def name(key: str) -> str:
        return base_name(key)

    return dataclasses.replace(
        report,
        missing=tuple(name(k) for k in report.missing),
        unexpected=tuple(name(k) for k in report.unexpected),
        mismatched=tuple(
            dataclasses.replace(m, key=name(m.key), checkpoint_key=name(m.checkpoint_key))
            for m in report.mismatched
        ),
        status_by_key={name(k): v for k, v in report.status_by_key.items()},
        ghost_keys={name(k): name(v) for k, v in report.ghost_keys.items()},
        unexpected_sources={name(k): name(v) for k, v in report.unexpected_sources.items()},
    )


_REQUIRED_ROLES = frozenset({"A", "B", "embedding_A", "embedding_B", "magnitude", "B_bias"})


def expected_adapter_shapes(
    settings: LoraSettings, base: dict[str, tuple[int, ...]], vocab_size: int | None
) -> dict[str, tuple[int, ...]]:
    """Every adapter key peft's LoRA layers on this base would load, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, weight in base.items():
        if not name.endswith(".weight") or len(weight) < 2:
            continue  # peft adapts linear, conv and embedding layers only
        module = name[: -len(".weight")]
        if not settings.targets(module):
            continue
        embedding = is_embedding(module, weight, vocab_size)
        if settings.target_modules == "all-linear" and (embedding or module.endswith("lm_head")):
            continue  # peft's all-linear leaves out embeddings and the output layer
        r = settings.rank_for(module)
        head = PREFIX + module
        if embedding:
            shapes[f"{head}.lora_embedding_A"] = (r, weight[0])
            shapes[f"{head}.lora_embedding_B"] = (weight[1], r)
            out = weight[1]
        elif len(weight) == 2:
            fan_in, fan_out = (
                (weight[0], weight[1]) if settings.fan_in_fan_out else (weight[1], weight[0])
            )
            shapes[f"{head}.lora_A.weight"] = (r, fan_in)
            shapes[f"{head}.lora_B.weight"] = (fan_out, r)
            out = fan_out
        else:
            shapes[f"{head}.lora_A.weight"] = (r, weight[1], *weight[2:])
            shapes[f"{head}.lora_B.weight"] = (weight[0], r, *(1 for _ in weight[2:]))
            out = weight[0]
        if settings.use_dora:
            # Conv magnitudes keep a broadcast shape peft builds at load: not checked (``()``).
            shapes[f"{head}.lora_magnitude_vector"] = (out,) if len(weight) == 2 else ()
        if settings.lora_bias:
            shapes[f"{head}.lora_B.bias"] = (out,)
        if embedding:
            # Saved with the adapter when the vocabulary was resized (save_embedding_layers).
            shapes[f"{head}.base_layer.weight"] = weight
    return shapes


def is_embedding(module: str, weight: tuple[int, ...], vocab_size: int | None) -> bool:
    """An embedding table: named so, or as many rows as the vocabulary (shapes alone
    cannot tell an embedding from a linear layer; see docs/lora.md)."""
    last = module.rpartition(".")[2]
    if len(weight) != 2 or last.endswith(("lm_head", "head", "proj", "dense")):
        return False
    if "embed" in last or last in ("wte", "wpe"):
        return True
    return vocab_size is not None and weight[0] == vocab_size and "emb" in module


def _role(name: str) -> str | None:
    key = classify(name)
    return key.role if key is not None else None


def _vocab_size(config: ResolvedConfig) -> int | None:
    value: Any = config.values.get("vocab_size")
    return value if isinstance(value, int) else None


def _targets_text(settings: LoraSettings) -> str:
    targets = settings.target_modules
    return repr(targets) if isinstance(targets, str) else "[" + ", ".join(sorted(targets)) + "]"
