"""What the export dialog offers: the jobs, and the choices each job takes."""

from __future__ import annotations

KINDS = {
    "convert": "Convert dtype",
    "reshard": "Re-shard",
    "safetensors": "Convert to safetensors",
    "gguf-safetensors": "Safetensors from GGUF (dequantized)",
    "random-init": "Random-init model from config",
    "merge-lora": "Merge LoRA adapter into its base",
}
DTYPE_KINDS = ("convert", "random-init", "gguf-safetensors", "merge-lora")
TAG_KINDS = ("convert", "reshard", "safetensors")  # the exports that take a tag or a weight set
GGUF_DTYPES = ("F32", "BF16", "F16")  # F32 first: what transformers holds after loading
SHARD_PRESETS = ("500MB", "1GB", "2GB", "5GB", "10GB")
DEFAULT_SHARD = {"reshard": "2GB"}  # everything else: 5GB, as save_pretrained
CONVERT_DTYPES = ("BF16", "F16", "F32")
OVERFLOW_CHOICES = (
    ("inf", "Write Inf (as torch does)"),
    ("clamp", "Clamp to the largest finite value"),
    ("error", "Stop with an error"),
)
