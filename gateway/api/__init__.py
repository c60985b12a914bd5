"""The management API: FastAPI served by hypercorn's trio worker."""

from .app import create_api
from .context import ApiContext

__all__ = ["ApiContext", "create_api"]
