"""GGUF (llama.cpp's format): header, metadata, HF names and config, dequantized values.

The parsing itself is the ``gguf`` package's (``GGUFReader``); these modules turn its
answers into ckpt-gui's vocabulary and transformers' names.
"""
