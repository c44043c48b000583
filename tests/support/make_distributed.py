"""Write real distributed-training checkpoints of a tiny Llama, as the libraries do.

Run as a program (the fixtures in ``distributed_fixtures.py`` do):

- ``python -m tests.support.make_distributed fsdp OUT FORMAT``: FSDP2 over two gloo
  processes, one AdamW step, ``dcp.save({"model": ..., "optim": ...})``. FORMAT is
  ``TORCH_SAVE`` (DCP's default) or ``SAFETENSORS``. Rank 0 also writes the
  full state dict DCP itself gathers (``reference.pt``) and ``config.json``.
- ``python -m tests.support.make_distributed tp OUT``: every matrix sharded by columns
  over two gloo processes (``Shard(1)``, as tensor parallelism's RowwiseParallel does),
  ``dcp.save({"model": ...})``.
- ``python -m torch.distributed.run --nproc_per_node 2 -m tests.support.make_distributed
  deepspeed OUT STAGE [SAVES]``: ``deepspeed.initialize`` on the CPU accelerator, then
  SAVES times (default 1) one step and ``save_checkpoint(OUT)``: tags ``global_step1``,
  ``global_step2``..., each with other weights; ``latest`` names the last.
"""

from __future__ import annotations

import os
import socket
import sys


def tiny_llama():  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return config, LlamaForCausalLM(config)


def _fsdp_rank(rank: int, world: int, out: str, port: int, fmt: str) -> None:
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemWriter
    from torch.distributed.checkpoint.filesystem import SerializationFormat
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_state_dict,
    )
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    config, model = tiny_llama()
    mesh = init_device_mesh("cpu", (world,))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(1))
    model(tokens).logits.sum().backward()
    optimizer.step()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    writer = FileSystemWriter(out, serialization_format=SerializationFormat[fmt])
    dcp.save({"model": model_sd, "optim": optim_sd}, storage_writer=writer)
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        torch.save(full, os.path.join(out, "..", os.path.basename(out) + "-reference.pt"))
        config.save_pretrained(os.path.join(out, "..", os.path.basename(out) + "-config"))
    dist.destroy_process_group()


def fsdp(out: str, fmt: str) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_fsdp_rank, args=(2, out, free_port(), fmt), nprocs=2)


def _tp_rank(rank: int, world: int, out: str, port: int) -> None:
    """Tensor parallel as RowwiseParallel shards a weight: columns (``Shard(1)``) per rank."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    _, model = tiny_llama()
    mesh = init_device_mesh("cpu", (world,))
    state = {
        name: distribute_tensor(value.detach(), mesh, [Shard(1) if value.dim() == 2 else Replicate()])
        for name, value in model.state_dict().items()
    }
    dcp.save({"model": state}, checkpoint_id=out)
    dist.destroy_process_group()


def tensor_parallel(out: str) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_tp_rank, args=(2, out, free_port()), nprocs=2)


def deepspeed_run(out: str, stage: int, saves: int = 1) -> None:
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed
    import torch

    config, model = tiny_llama()
    engine, *_ = deepspeed.initialize(
        model=model,
        model_parameters=model.parameters(),
        config={
            "train_micro_batch_size_per_gpu": 1,
            "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}},
            "bf16": {"enabled": True},
            "zero_optimization": {"stage": stage},
        },
    )
    tokens = torch.randint(0, config.vocab_size, (1, 8), generator=torch.Generator().manual_seed(1))
    for _ in range(saves):
        engine.backward(engine(tokens, labels=tokens).loss)
        engine.step()
        engine.save_checkpoint(out)
    if int(os.environ.get("RANK", "0")) == 0:
        config.save_pretrained(out)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    kind, target, option = [*sys.argv[1:4], ""][:3]
    if kind == "fsdp":
        fsdp(target, option)
    elif kind == "tp":
        tensor_parallel(target)
    else:
        deepspeed_run(target, int(option), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
