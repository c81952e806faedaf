"""Database errors as the project's, mapped once, where the backend talks to PostgreSQL.

A server that cannot be reached, refuses the credentials, restarts or runs out of disk is a
`StorageError` (the API answers 503, or 507 for a full disk, and the next question tries again);
what needs a person (no pgvector, no privilege, a damaged table) is an `IndexStateError` that
says what to do. Every message is one line and names the location without its password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from qa.errors import IndexStateError, StorageError


def first_line(exc: BaseException) -> str:
    """One line of what libpq said. Its messages span lines ('connection failed: connection to
    server at ... failed: Connection refused', then a hint; or 'FATAL:  ...'): keep the reason,
    with the hint in brackets."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    for line in lines:
        for severity in ("FATAL:", "ERROR:"):
            if severity in line:
                return line.split(severity, 1)[1].strip()
    reason = lines[0].rsplit("failed:", 1)[-1].strip() or lines[0]
    hints = [line for line in lines[1:] if not line.startswith("connection to server")]
    return f"{reason} ({' '.join(hints)})" if hints else reason


def unreachable(display: str, exc: BaseException) -> StorageError:
    message = first_line(exc)
    if isinstance(exc, psycopg_pool.PoolTimeout):
        message = "no connection became free or could be made in time (is the server up and reachable?)"
    credentials = ("password authentication failed", "no password supplied", 'role "')
    if any(sign in message for sign in credentials):
        return StorageError(f"PostgreSQL at {display} refused the credentials: {message}")
    return StorageError(f"cannot reach PostgreSQL at {display}: {message}")


@contextmanager
def database_errors(display: str, action: str) -> Iterator[None]:
    """Translate what PostgreSQL and the connection pool raise during `action` (read, write...)."""
    try:
        yield
    except (IndexStateError, StorageError):
        raise
    except pg_errors.DiskFull as exc:
        raise StorageError(
            f"PostgreSQL at {display} is out of disk space; the {action} was refused whole "
            f"({first_line(exc)})",
            disk_full=True,
        ) from exc
    except pg_errors.ReadOnlySqlTransaction as exc:
        raise StorageError(
            f"PostgreSQL at {display} is read-only (a replica, or in recovery): the {action} needs "
            "the primary"
        ) from exc
    except pg_errors.InsufficientPrivilege as exc:
        raise IndexStateError(
            f"the PostgreSQL user lacks a privilege for the {action} at {display}: {first_line(exc)}"
        ) from exc
    except (pg_errors.DataCorrupted, pg_errors.IndexCorrupted) as exc:
        raise IndexStateError(
            f"PostgreSQL reports damaged data at {display} ({first_line(exc)}); restore it or rebuild "
            "the index"
        ) from exc
    except pg_errors.TransactionRollback as exc:  # a serialization failure or a deadlock
        raise StorageError(
            f"PostgreSQL at {display} rolled the {action} back ({first_line(exc)}); nothing of it "
            "was kept: try again"
        ) from exc
    except (pg_errors.QueryCanceled, pg_errors.LockNotAvailable) as exc:
        raise StorageError(
            f"PostgreSQL at {display} cancelled the {action} ({first_line(exc)}); nothing of it was kept"
        ) from exc
    except pg_errors.TooManyConnections as exc:
        raise StorageError(f"PostgreSQL at {display} has no free connection: {first_line(exc)}") from exc
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
        raise unreachable(display, exc) from exc
    except psycopg.Error as exc:
        raise StorageError(f"PostgreSQL at {display} refused the {action}: {first_line(exc)}") from exc
