"""peft adapters (LoRA): their settings, what they change, whether they fit a base.

Read from peft's own files (``adapter_config.json`` + ``adapter_model.safetensors``
or ``.bin``) without importing peft or torch: peft is a test dependency only, the
oracle the tests compare with.
"""
