"""The HTTP service: thin FastAPI routers over the library."""

from .app import create_app, create_cluster_app

__all__ = ["create_app", "create_cluster_app"]
