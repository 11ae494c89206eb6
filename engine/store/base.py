"""The names the services type the persistence layer by. Each is today the SQLite class that
implements it (records.py, documents.py, chunks.py), the one place its methods are declared;
another database (PostgreSQL, for a cluster) turns these names into Protocols of the same
methods, which both backends implement, with no change to the services. Rows are plain dicts."""

from __future__ import annotations

from .chunks import ChunkRows as ChunkTable
from .chunks import FileCounter
from .documents import Documents as DocumentTable
from .documents import ItemLists as ItemTable
from .records import FileRows as FileTable
from .records import SessionRows as SessionTable
from .records import Tables as Pageable

__all__ = [
    "ChunkTable",
    "DocumentTable",
    "FileCounter",
    "FileTable",
    "ItemTable",
    "Pageable",
    "SessionTable",
]
