"""The names of model weight files, shared by the folder reader and the Hub's cache and plans.

A leaf module: the Hub's cache listing needs these names without importing the
readers (which, for adapters, look for their base model in that cache).
"""

from __future__ import annotations

# Preferred weight files, in the order transformers itself looks for them.
PREFERRED = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
