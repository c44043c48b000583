"""Quantized checkpoints: which scheme, what each tensor is, the real parameter count.

``scheme`` reads ``quantization_config`` (or recognises a layout from tensor names),
``roles`` says what each tensor is (packed weight, bookkeeping, plain), ``analysis``
adds them up per module and ``checks`` says when a layout does not add up
(``core/check/quantized_keys.py`` tells the config check which keys a quantized
model stores). Nothing here imports torch or reads tensor data.
"""
