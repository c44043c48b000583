"""Memory estimates from headers and config.json: weights, training, KV cache, LoRA.

``estimate`` puts them together, ``weights`` sizes tensors (quantization-aware),
``kv_cache`` reads the attention layout from the config, ``lora`` sizes an adapter,
``config_source`` describes a model from its config alone.
"""
