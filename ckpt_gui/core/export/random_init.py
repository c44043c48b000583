"""Random-init export: a model folder with fresh weights from a config, a piece at a time.

The model is built on the meta device (no memory), then materialised one unit
at a time: a unit is the largest subtree of modules that fits a byte budget
(a decoder layer, the embeddings ...; see units.py). Each unit gets real
storage (a reused arena), is initialised by the model's own ``_initialize_weights`` (the
``_init_weights`` of the nearest PreTrainedModel, children before parents, as
``initialize_weights`` does), is written, and goes back to meta. Peak memory is
one unit, not the model.

Every module is seeded from (seed, module name) before its init, so the bytes
depend on the seed alone: not on the shard size or on how units are cut.
Tied weights are written once, under the name save_pretrained keeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ckpt_gui.core.check import size_guard
from ckpt_gui.core.check.size_guard import BuildBudget
from ckpt_gui.core.dtypes import nbytes_for, torch_dtype_name
from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.export import renames as rename_rules
from ckpt_gui.core.export.atomic import check_target
from ckpt_gui.core.export.engine import ExportOptions, ExportResult, run_export
from ckpt_gui.core.export.plan import (
    DEFAULT_MAX_SHARD_SIZE,
    ExportPlan,
    PlannedTensor,
    split_into_shards,
)
from ckpt_gui.core.export.units import UnitMaterializer
from ckpt_gui.core.gc_pause import collector_paused
from ckpt_gui.core.jobs import Job

# Not smaller: a parent's _init_weights that reaches into its children (GPT-2's
# scaled c_proj, applied at the MLP/attention level) runs only when the parent's
# subtree is one unit; 128 MB keeps GPT-2 XL's 82 MB MLP whole.
UNIT_BUDGET = 128 * 1024 * 1024
USER_TO_TORCH = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def load_config(config: str | Path, weights_key: str | None = None) -> Any:
    """A transformers config from config.json, a folder holding one, or the config a
    whole-model PyTorch pickle carries (read without running the pickle; no remote code)."""
    from transformers import AutoConfig

    path = Path(config).expanduser()
    if not path.exists():
        raise CheckpointError(config, "no such file or folder")
    if path.is_file() and _is_pickle(path):
        return _embedded_config(path, weights_key)
    if path.is_dir() and not (path / "config.json").is_file():
        raise CheckpointError(config, "folder has no config.json")
    try:
        return AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            config, f"not a usable config ({' '.join(str(exc).split())[:200]})"
        ) from None


def _is_pickle(path: Path) -> bool:
    from ckpt_gui.core.formats import pytorch

    with path.open("rb") as stream:
        return pytorch.sniff(stream.read(8))


def _embedded_config(path: Path, weights_key: str | None) -> Any:
    from transformers import AutoConfig

    from ckpt_gui.core.formats import open_checkpoint

    embedded = open_checkpoint(path, weights_key).config
    if embedded is None:
        raise CheckpointError(path, "holds no transformers config (not a whole-model save)")
    values = dict(embedded)
    model_type = values.pop("model_type", None)
    try:
        return AutoConfig.for_model(str(model_type), **values)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            path, f"embedded config is not usable ({' '.join(str(exc).split())[:200]})"
        ) from None


def model_class(config: Any, source: str) -> Any:
    import transformers

    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    from transformers import AutoModel, AutoModelForCausalLM

    for auto in (AutoModelForCausalLM, AutoModel):
        mapping = auto._model_mapping
        if type(config) in mapping:
            return mapping[type(config)]
    raise CheckpointError(
        source, f"no transformers model class for model_type {config.model_type!r}"
    )


def plan_random_init(
    config: str | Path,
    output: str | Path,
    *,
    dtype: str | None = None,
    max_shard_size: int | None = None,
    seed: int = 0,
    renames: Iterable[rename_rules.RenameRuleLike] | None = None,
    overwrite: bool = False,
    unit_budget: int = UNIT_BUDGET,
    weights_key: str | None = None,
    build_budget: BuildBudget | None = None,
) -> ExportPlan:
    """Plan the files; builds the model on the meta device (no weights in memory).

    A config asking for an impossible size is refused before transformers reads
    it; the meta build is stopped once it exceeds ``build_budget`` (size_guard).
    """
    with collector_paused():  # the imports (seconds) and the meta build
        out = Path(output).expanduser()
        config_path = Path(config).expanduser()
        check_target(out, [config_path], overwrite)
        _refuse_absurd_config(config_path, str(config), weights_key)
        cfg = load_config(config_path, weights_key)
        cls = model_class(cfg, str(config))
        with size_guard.build_budget(build_budget, str(config)):
            model, dtype = _meta_model(cls, cfg, dtype)
    names = _saved_names(model)
    rules = rename_rules.normalize(renames)
    renamed = rename_rules.rename_all(names, rules, str(config))
    state = model.state_dict(keep_vars=True)
    planned = [
        PlannedTensor(
            renamed[name],
            torch_dtype_name(state[name].dtype),
            tuple(state[name].shape),
            nbytes_for(torch_dtype_name(state[name].dtype), state[name].numel()),
        )
        for name in names
    ]
    shards = split_into_shards(planned, max_shard_size or DEFAULT_MAX_SHARD_SIZE, {"format": "pt"})
    model.config.dtype = USER_TO_TORCH[dtype]
    model.config.architectures = [cls.__name__]
    generated = [("config.json", model.config.to_json_string(use_diff=True).encode())]
    if model.can_generate() and getattr(model, "generation_config", None) is not None:
        generated.append(
            (
                "generation_config.json",
                model.generation_config.to_json_string(use_diff=True).encode(),
            )
        )
    return ExportPlan(
        kind="random-init",
        source=str(config),
        output=out,
        shards=shards,
        max_shard_size=max_shard_size or DEFAULT_MAX_SHARD_SIZE,
        generated_files=tuple(generated),
        extra={"architecture": cls.__name__, "dtype": dtype, "seed": seed},
        context={
            "model": model,
            "names": {v: k for k, v in renamed.items()},
            "budget": unit_budget,
        },
    )


def _refuse_absurd_config(path: Path, source: str, weights_key: str | None = None) -> None:
    """Estimate from the raw JSON: transformers' own parsing of a huge config is slow too."""
    from ckpt_gui.core.check.config_source import read_config_file

    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        return  # load_config says what is wrong
    if _is_pickle(file):
        from ckpt_gui.core.formats import open_checkpoint

        # The config a whole-model pickle carries (read without running it).
        embedded = open_checkpoint(file, weights_key).config
        if embedded is None:
            return  # load_config says what is wrong
        values = dict(embedded)
    else:
        values = read_config_file(file)
    architectures = values.get("architectures")
    architecture = (
        architectures[0]
        if isinstance(architectures, list) and architectures and isinstance(architectures[0], str)
        else None
    )
    from ckpt_gui.core.check.templates.template import template_size

    size_guard.refuse_absurd(values, source, template_size(values, architecture))


def _meta_model(cls: Any, cfg: Any, dtype: str | None) -> tuple[Any, str]:
    """The model on the meta device in ``dtype`` (default: the config's, else F32)."""
    import torch

    if dtype is None:
        configured = getattr(cfg, "dtype", None)
        dtype = torch_dtype_name(configured) if configured is not None else "F32"
        if dtype not in USER_TO_TORCH:
            dtype = "F32"
    torch_dtype = getattr(torch, USER_TO_TORCH[dtype])
    with torch.device("meta"):
        model = cls._from_config(cfg, dtype=torch_dtype)
    _keep_in_fp32(model, torch_dtype)
    return model, dtype


def run_random_init(plan: ExportPlan, options: ExportOptions | None = None) -> Job[ExportResult]:
    options = options or ExportOptions()
    context = plan.context
    assert isinstance(context, dict)
    _return_freed_memory_promptly()
    names = context["names"]
    units = UnitMaterializer(
        context["model"], int(plan.extra["seed"]), context["budget"], names.values()
    )

    def provider(tensor: PlannedTensor) -> Any:
        return units.tensor(names[tensor.name])

    try:
        return (
            yield from run_export(
                plan, [Path(plan.source).expanduser()], options, provider=provider, release=None
            )
        )
    finally:
        units.close()


def random_init(
    config: str | Path,
    output: str | Path,
    *,
    dtype: str | None = None,
    max_shard_size: int | None = None,
    seed: int = 0,
    renames: Iterable[rename_rules.RenameRuleLike] | None = None,
    options: ExportOptions | None = None,
) -> Job[ExportResult]:
    options = options or ExportOptions()
    plan = plan_random_init(
        config,
        output,
        dtype=dtype,
        max_shard_size=max_shard_size,
        seed=seed,
        renames=renames,
        overwrite=options.overwrite,
    )
    return (yield from run_random_init(plan, options))


def _return_freed_memory_promptly() -> None:
    """Serve allocations of 4 MiB and more with their own mmap (glibc).

    Units are allocated and freed one after another, some on a worker thread;
    glibc's adaptive threshold would otherwise keep freed tensors in its heaps,
    and the process would hold several units' worth of memory it no longer uses.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 4 * 1024 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError, TypeError):  # not glibc; TypeError: Windows
        pass


def _keep_in_fp32(model: Any, dtype: Any) -> None:
    """Put keep-in-fp32 parameters back to float32 (meta: costs nothing), as loading would."""
    import re

    import torch

    plan = model._get_dtype_plan(dtype)
    if not plan:
        return
    pattern = re.compile("|".join(f"(?:{p.replace('*', '.*')})" for p in plan))
    for name, module in model.named_modules():
        for attr, param in list(module._parameters.items()):
            full = f"{name}.{attr}" if name else attr
            if param is not None and param.is_floating_point() and pattern.search(full):
                module._parameters[attr] = torch.nn.Parameter(
                    param.to(torch.float32), requires_grad=param.requires_grad
                )


def _saved_names(model: Any) -> list[str]:
    """state_dict order, tied aliases and keys ignored on save left out (as save_pretrained)."""
    state = model.state_dict(keep_vars=True)
    ignored = set(getattr(model, "_keys_to_ignore_on_save", None) or ())
    tied_targets = set(getattr(model, "all_tied_weights_keys", {}) or {})
    seen: dict[int, str] = {}
    names: list[str] = []
    for name, tensor in state.items():
        if name in ignored:
            continue
        if id(tensor) in seen and name in tied_targets:
            continue
        if id(tensor) in seen and seen[id(tensor)] in tied_targets:
            # Keep the tie source's name, as save_pretrained does.
            names[names.index(seen[id(tensor)])] = name
            seen[id(tensor)] = name
            continue
        seen.setdefault(id(tensor), name)
        names.append(name)
    return names
