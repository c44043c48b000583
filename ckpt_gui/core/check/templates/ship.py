"""The shipped templates: which architectures, which variants, and the file they go to.

``python -m ckpt_gui.core.check.templates.ship`` (``make templates``) relearns them for the
installed transformers; the tests check them against real builds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ckpt_gui.core.check.templates.learn import Learner
from ckpt_gui.core.check.templates.template import TEMPLATE_DIR, Template, is_int

# Layer counts are learned at 3 (builds are then quick) when the count turns out free;
# 3 rather than 2, which would divide most sizes and make _divisions see false pairs.
LAYER_FIELDS = (
    "num_hidden_layers",
    "num_layers",
    "n_layer",
    "encoder_layers",
    "decoder_layers",
    "num_decoder_layers",
)


def learn_variants(architecture: str, limit: int = 16) -> list[Template]:
    """Templates for the class defaults and for the structural variants real configs
    use: an explicit ``head_dim`` or ``num_key_value_heads``, flipped booleans."""
    learner = Learner(architecture)
    import transformers

    processed = getattr(transformers, architecture).config_class().to_dict()
    queue: list[dict[str, Any]] = [{}]
    seen: set[str] = set()
    templates: list[Template] = []
    while queue and len(seen) < limit:
        overrides = queue.pop(0)
        key = json.dumps(overrides, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        template = _learn_small_first(learner, overrides)
        if template is None:
            continue
        templates.append(template)
        for name, value in template.base.items():
            if name in template.free or name in overrides:
                continue
            if isinstance(value, bool):
                queue.append({**overrides, name: not value})
            elif value is None and is_int(processed.get(name)):
                queue.append({**overrides, name: processed[name]})
    return templates


def _learn_small_first(learner: Learner, overrides: dict[str, Any]) -> Template | None:
    shrink = {
        name: 3
        for name in LAYER_FIELDS
        if name not in overrides and is_int(learner.defaults.get(name))
    }
    if shrink:
        template = learner.learn({**overrides, **shrink})
        if template is not None and all(template.free.get(n) == "int" for n in shrink):
            return template
    return learner.learn(overrides)


DEFAULT_ARCHITECTURES = (
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "GemmaForCausalLM",
    "Gemma2ForCausalLM",
    "Phi3ForCausalLM",
    "MixtralForCausalLM",
    "GPT2LMHeadModel",
    "GPTNeoXForCausalLM",
    "OPTForCausalLM",
    "FalconForCausalLM",
    "BertModel",
    "BertForMaskedLM",
    "RobertaModel",
    "RobertaForMaskedLM",
    "T5ForConditionalGeneration",
    "BartForConditionalGeneration",
    "ViTModel",
)


def write_shipped(architectures: Sequence[str], folder: Path) -> Path:
    """Learn templates for ``architectures`` and write them for this transformers."""
    version = metadata.version("transformers")
    templates = [t.to_json() for a in architectures for t in learn_variants(a)]
    path = folder / f"transformers-{version}.json"
    path.write_text(
        json.dumps({"transformers": version, "templates": templates}, indent=0) + "\n",
        encoding="utf-8",
    )
    return path


if __name__ == "__main__":
    import sys

    TEMPLATE_DIR.mkdir(exist_ok=True)
    written = write_shipped(sys.argv[1:] or DEFAULT_ARCHITECTURES, TEMPLATE_DIR)
    print(f"wrote {written}")
