"""GGUF key/value fields as the user wants to read them.

A summary of what matters (architecture, context length, head counts, rope,
tokenizer), and every field as a tree split at the dots. Long arrays (a
tokenizer's 150k tokens and scores) are summarised: their length and first
entries, never the whole list.
"""

from __future__ import annotations

from typing import Any

from ckpt_gui.core.gguf.header import GGUFHeader

ARRAY_PREVIEW = 8
STRING_PREVIEW = 200
# Fields of ``{arch}.`` worth a line of their own, in this order.
SUMMARY_KEYS = (
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_rms_epsilon",
    "rope.dimension_count",
    "rope.freq_base",
    "rope.scaling.type",
    "rope.scaling.factor",
    "vocab_size",
    "expert_count",
    "expert_used_count",
)


def architecture(header: GGUFHeader) -> str | None:
    value = header.fields.get("general.architecture")
    return value if isinstance(value, str) else None


def summary(header: GGUFHeader) -> dict[str, Any]:
    """The headline facts, keys as GGUF spells them without the architecture prefix."""
    arch = architecture(header)
    facts: dict[str, Any] = {"gguf_version": header.version, "architecture": arch}
    for key in ("general.name", "general.file_type", "general.quantization_version"):
        if key in header.fields:
            facts[key.removeprefix("general.")] = header.fields[key]
    if arch:
        for key in SUMMARY_KEYS:
            full = f"{arch}.{key}"
            if full in header.fields:
                facts[key] = _preview(header.fields[full])
    tokenizer = tokenizer_summary(header)
    if tokenizer:
        facts["tokenizer"] = tokenizer
    return facts


def tokenizer_summary(header: GGUFHeader) -> dict[str, Any]:
    fields = header.fields
    found: dict[str, Any] = {}
    if "tokenizer.ggml.model" in fields:
        found["model"] = fields["tokenizer.ggml.model"]
    if "tokenizer.ggml.pre" in fields:
        found["pre"] = fields["tokenizer.ggml.pre"]
    tokens = fields.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list):
        found["tokens"] = len(tokens)
    merges = fields.get("tokenizer.ggml.merges")
    if isinstance(merges, list):
        found["merges"] = len(merges)
    for key in ("bos_token_id", "eos_token_id", "padding_token_id", "unknown_token_id"):
        value = fields.get(f"tokenizer.ggml.{key}")
        if isinstance(value, int):
            found[key] = value
            if isinstance(tokens, list) and 0 <= value < len(tokens):
                found[key.replace("_id", "")] = tokens[value]
    if "tokenizer.chat_template" in fields:
        found["chat_template"] = True
    return found


def field_tree(header: GGUFHeader) -> dict[str, Any]:
    """Every field, nested at the dots (``llama.rope.freq_base`` -> llama/rope/freq_base)."""
    tree: dict[str, Any] = {}
    for key, value in header.fields.items():
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else {"": child}
                node[part] = child
            node = child
        leaf = parts[-1]
        shown = _preview(value)
        if isinstance(node.get(leaf), dict):
            node[leaf][""] = shown
        else:
            node[leaf] = shown
    return tree


def _preview(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) <= ARRAY_PREVIEW:
            return [_preview(v) for v in value]
        head = ", ".join(repr(_preview(v)) for v in value[:ARRAY_PREVIEW])
        return f"[{head}, ...] ({len(value):,} entries)"
    if isinstance(value, str) and len(value) > STRING_PREVIEW:
        return value[:STRING_PREVIEW] + f"... ({len(value):,} characters)"
    return value
