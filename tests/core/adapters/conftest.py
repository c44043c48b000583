"""Bases and adapters made once per session by transformers and peft at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.peft_fixtures import save_adapter, save_base


@pytest.fixture(scope="session")
def lora_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A base and a plain LoRA adapter (q_proj, v_proj) for it."""
    root = tmp_path_factory.mktemp("lora-pair")
    base = save_base(root / "base")
    return base, save_adapter(root / "adapter", base)


@pytest.fixture(scope="session")
def rich_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A base and an adapter using most of LoRA: embeddings, DoRA, rank and alpha
    patterns, modules_to_save."""
    root = tmp_path_factory.mktemp("rich-pair")
    base = save_base(root / "base")
    adapter = save_adapter(
        root / "adapter",
        base,
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj", "embed_tokens"],
        use_dora=True,
        rank_pattern={"layers.1.self_attn.q_proj": 2},
        alpha_pattern={"v_proj": 3},
        modules_to_save=["lm_head"],
    )
    return base, adapter
