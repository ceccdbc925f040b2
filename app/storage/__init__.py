"""Object storage for uploads and archived results: one small interface, two backends.

`LocalObjectStore` keeps objects as files under a directory (the default);
`S3ObjectStore` keeps them in any S3-compatible store through `obstore`. Both stream in
and out, never holding an object whole in memory, and both list by prefix so the janitor
can enforce retention.
"""

from app.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    StoredObject,
)
from app.storage.keys import InvalidKey, new_key, safe_filename, validate_key

__all__ = [
    "InvalidKey",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectTooLarge",
    "StoredObject",
    "new_key",
    "safe_filename",
    "validate_key",
]
