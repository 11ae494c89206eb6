"""The one persistence layer: the engine's records, JSON documents and retrieval's chunks, all
in one SQLite database under the data folder (no server needed), or in PostgreSQL when
``SANDBOX_DATABASE_URL`` names one; every connection opened by one policy
(``database.connect``). SQL lives in this package only."""

from .records import Store
from .sqlite import DB_FILES, Connection, DatabaseError, Row, disk_full_is_storage_full

__all__ = [
    "DB_FILES",
    "Connection",
    "DatabaseError",
    "Row",
    "Store",
    "disk_full_is_storage_full",
]
