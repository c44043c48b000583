"""Human-readable numbers shared by the CLI and the GUI."""

from __future__ import annotations


def human_count(value: int) -> str:
    """1234567 -> '1.23M' (parameters, in powers of 1000 as papers count them)."""
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return str(value)


def human_bytes(value: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def parse_size(text: str) -> int:
    """'500MB' -> 500_000_000, '2GiB' -> 2 * 1024**3, as transformers reads shard sizes."""
    units = {
        "": 1,
        "B": 1,
        "KB": 10**3,
        "MB": 10**6,
        "GB": 10**9,
        "TB": 10**12,
        "KIB": 2**10,
        "MIB": 2**20,
        "GIB": 2**30,
        "TIB": 2**40,
    }
    stripped = text.strip().upper().replace(" ", "")
    number = stripped.rstrip("KMGTIB")
    unit = stripped[len(number) :]
    if unit not in units or not number:
        raise ValueError(f"not a size: {text!r} (try 500MB or 2GB)")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (try 500MB or 2GB)") from None
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return int(value * units[unit])
