"""shardseq: unique IDs from a shardseq server, handed out in this process.

    import shardseq

    with shardseq.Client("http://127.0.0.1:8080", "orders") as c:
        order_id = c.next()
        batch = c.next_n(100)

Standard library only; Python 3.9+. See README.md.
"""

from ._version import __version__
from .client import MAX_BATCH, MAX_LEASE, Client, Lease
from .errors import (
    BadRequestError,
    ClosedError,
    NamespaceDeletedError,
    NamespaceNotFoundError,
    ShardseqError,
    TooManyNamespacesError,
    UnauthorizedError,
    UnavailableError,
)

__all__ = [
    "__version__",
    "Client",
    "Lease",
    "MAX_BATCH",
    "MAX_LEASE",
    "ShardseqError",
    "BadRequestError",
    "UnauthorizedError",
    "NamespaceNotFoundError",
    "NamespaceDeletedError",
    "TooManyNamespacesError",
    "UnavailableError",
    "ClosedError",
]
