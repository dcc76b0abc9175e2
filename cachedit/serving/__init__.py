"""Cached generation behind HTTP (``python -m runners.serve``): FastAPI app, request schema, metrics.

Only `config` is imported here: the rest needs the `serve` extra (fastapi, uvicorn, python-multipart)."""

from .config import ServerConfig

__all__ = ["ServerConfig"]
