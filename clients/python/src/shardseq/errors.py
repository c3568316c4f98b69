"""Errors of the shardseq client: one class per documented error code."""

from typing import Optional


class ShardseqError(Exception):
    """Base of every error the client raises.

    ``code`` is the server's error code (README "HTTP API": ``unauthorized``,
    ``namespace_deleted``, ``unavailable``, ...) or, for what the client
    decides itself, ``closed`` or ``bad_response``; ``status`` the HTTP status
    (``None`` when no answer came). Branch on the class or on ``code``, never
    on the text.
    """

    code = "internal"

    def __init__(self, message: str, code: Optional[str] = None, status: Optional[int] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.status = status


class BadRequestError(ShardseqError):
    """400: a bad namespace name (``bad_namespace``) or count (``bad_count``)."""

    code = "bad_request"


class UnauthorizedError(ShardseqError):
    """401: no valid bearer token (``unauthorized``)."""

    code = "unauthorized"


class NamespaceNotFoundError(ShardseqError):
    """404: the namespace does not exist and the server creates none on use
    (``namespace_not_found``)."""

    code = "namespace_not_found"


class NamespaceDeletedError(NamespaceNotFoundError):
    """404: the namespace was deleted and the server does not recreate it
    (``namespace_deleted``). It is a NamespaceNotFoundError too."""

    code = "namespace_deleted"


class TooManyNamespacesError(ShardseqError):
    """429: the server creates no more namespaces for now
    (``too_many_namespaces``); retried until the client's retry time ends."""

    code = "too_many_namespaces"


class UnavailableError(ShardseqError):
    """Nothing could be handed out in time: the server answered 503
    (``unavailable``) or could not be reached, through every retry. The
    message says which server, how many attempts, for how long, and the last
    error."""

    code = "unavailable"


class ClosedError(ShardseqError):
    """The client was closed (``closed``)."""

    code = "closed"


_BY_CODE = {
    "bad_namespace": BadRequestError,
    "bad_count": BadRequestError,
    "unauthorized": UnauthorizedError,
    "namespace_not_found": NamespaceNotFoundError,
    "namespace_deleted": NamespaceDeletedError,
    "too_many_namespaces": TooManyNamespacesError,
    "unavailable": UnavailableError,
}


def from_answer(status: int, code: Optional[str], message: str) -> ShardseqError:
    """The exception for an error answer of the server."""
    cls = _BY_CODE.get(code or "")
    if cls is None:
        if status == 401:
            cls = UnauthorizedError
        elif status == 503:
            cls = UnavailableError
        elif status == 400:
            cls = BadRequestError
        else:
            cls = ShardseqError
    return cls(message, code=code or cls.code, status=status)


def retryable(err: ShardseqError) -> bool:
    """Whether asking again later may succeed: the server was unreachable,
    unavailable or busy creating namespaces."""
    return isinstance(err, (UnavailableError, TooManyNamespacesError))
