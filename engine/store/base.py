"""The names the services type the persistence layer by. Each is the one class that implements
it (records.py, documents.py, chunks.py), the one place its methods are declared, written over
either database: the seam between SQLite and PostgreSQL is ``database.Database``, one level
down, so that no statement is written twice. Rows are plain dicts."""

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
