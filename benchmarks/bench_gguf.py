"""GGUF -> safetensors against transformers' from_pretrained(gguf_file=...) + save_pretrained.

A Llama-shaped GGUF of about 1.1B parameters (TinyLlama's shape: hidden 2048,
22 layers, vocab 32000) in Q8_0, about 1.2 GB: random int8 codes with a small
f16 scale per block (what gguf dequantizes like any real Q8_0 file), norms F32.
Both sides write float32 safetensors (what transformers holds after loading), so
both dequantize the same blocks and write the same 4.4 GB. Scale it for quick runs
with CKPT_GUI_BENCH_SCALE (fraction of the 22 layers, e.g. 0.1).

The source is evicted from the page cache before every run, so both read cold.
Ours runs with --no-fsync (save_pretrained does not fsync).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from common import Measurement, Result, measure, python

SCALE = float(os.environ.get("CKPT_GUI_BENCH_SCALE", "1"))
LAYERS = max(1, round(22 * SCALE))
CONFIG = {
    "vocab_size": 32000,
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
GGUF_NAME = "tinyllama-Q8_0.gguf"


def write_gguf(path: Path) -> None:
    """Stream a Q8_0 GGUF tensor by tensor (gguf's writer: info first, then the data)."""
    import gguf
    import numpy as np
    from llama_shapes import llama_tensor_shapes

    c = CONFIG
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("bench tinyllama")
    writer.add_context_length(c["max_position_embeddings"])
    writer.add_embedding_length(c["hidden_size"])
    writer.add_block_count(c["num_hidden_layers"])
    writer.add_feed_forward_length(c["intermediate_size"])
    writer.add_rope_dimension_count(c["hidden_size"] // c["num_attention_heads"])
    writer.add_head_count(c["num_attention_heads"])
    writer.add_head_count_kv(c["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(c["rms_norm_eps"])
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(c["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, c["num_hidden_layers"])
    q8 = gguf.GGMLQuantizationType.Q8_0
    block, size = gguf.GGML_QUANT_SIZES[q8]
    shapes = llama_tensor_shapes(c)
    plan = []
    for hf_name, shape in shapes.items():
        name = name_map.get_name(hf_name.rsplit(".", 1)[0]) + ".weight"
        if len(shape) == 1:
            writer.add_tensor_info(name, shape, np.dtype(np.float32), shape[0] * 4)
            plan.append((name, shape, None))
        else:
            rows, cols = shape
            nbytes = rows * cols // block * size
            writer.add_tensor_info(
                name, [rows, cols // block * size], np.dtype(np.uint8), nbytes, q8
            )
            plan.append((name, shape, nbytes))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(0)
    scale = np.array([0.002], dtype=np.float16).view(np.uint8)
    for _name, shape, nbytes in plan:
        if nbytes is None:
            writer.write_tensor_data(np.ones(shape, dtype=np.float32))
            continue
        rows, cols = shape
        blocks = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
        blocks[:, :, :2] = scale
        writer.write_tensor_data(blocks.reshape(rows, -1))
    writer.close()


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# transformers 5.23 refuses to save a model loaded from GGUF ("quantized with gguf and
# not serializable"), even once dequantized: the baseline detaches the quantizer first.
BASELINE = (
    "import sys\n"
    "from transformers import AutoModelForCausalLM\n"
    "model = AutoModelForCausalLM.from_pretrained(sys.argv[1], gguf_file=sys.argv[2])\n"
    "model.hf_quantizer = None\n"
    "del model.config.quantization_config\n"
    "model.save_pretrained(sys.argv[3])\n"
)


def run(workdir: Path) -> list[Result]:
    source = workdir / GGUF_NAME
    print(f"   generating a {LAYERS}-layer Llama GGUF (Q8_0, random blocks)", flush=True)
    measure(
        python(
            "-c",
            f"import sys; sys.path[:0] = {[str(Path(__file__).parent)]!r}; "
            "from bench_gguf import write_gguf; from pathlib import Path; "
            f"write_gguf(Path({str(source)!r}))",
        )
    )
    gguf_bytes = source.stat().st_size
    out = workdir / "out"

    def timed(argv: list[str]) -> tuple[Measurement, int]:
        os.sync()
        evict(source)
        shutil.rmtree(out, ignore_errors=True)
        measurement = measure(argv)
        written = sum(p.stat().st_size for p in out.glob("*.safetensors"))
        shutil.rmtree(out, ignore_errors=True)
        return measurement, written

    ours, ours_written = timed(
        python("-m", "ckpt_gui", "export", "safetensors", str(source), str(out), "--no-fsync")
    )
    base, base_written = timed(python("-c", BASELINE, str(workdir), GGUF_NAME, str(out)))
    if not ours_written or not base_written:
        raise RuntimeError(f"nothing written (ours {ours_written}, baseline {base_written} bytes)")
    load = os.getloadavg()
    note = (
        f"GGUF {gguf_bytes / 1e9:.2f} GB Q8_0 -> float32 safetensors "
        f"(ours wrote {ours_written / 1e9:.2f} GB, transformers {base_written / 1e9:.2f} GB); "
        f"peak memory ratio ours/transformers {ours.peak_rss_mb / base.peak_rss_mb:.2f} "
        f"(target <= 0.25); load average {load[0]:.1f} {load[1]:.1f} on {os.cpu_count()} cores"
    )
    return [Result(f"gguf Q8_0 -> safetensors ({LAYERS} layers)", ours, base, 2.0, note)]
