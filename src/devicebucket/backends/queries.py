"""SQL for browsing devices, shared by the SQLite and PostgreSQL stores (pure: no I/O).

A page is found in two cheap steps instead of one aggregate over every device: the ids of
the page first (sorted by id, an index scan that stops at the page; sorted by an aggregate,
a lean aggregate of that one column), then the full listing of just those ids. The total is
a ``COUNT(DISTINCT device)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tables import Dialect

__all__ = ["DevicePageSQL", "device_page_sql"]

SORT_EXPRESSIONS = {
    "keys": "SUM(CASE WHEN job = '' THEN keys ELSE 0 END)",
    "size": "SUM(size)",
    "updated_at": "MAX(updated_at)",
}


@dataclass(frozen=True, slots=True)
class DevicePageSQL:
    count: str
    count_args: list[Any]
    page: str  # the ids of the page, in order
    page_args: list[Any]


def device_page_sql(
    search: str,
    job: str | None,
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
    dialect: Dialect,
) -> DevicePageSQL:
    """The statements of one page in ``dialect`` (the search needle is lowered here: ids are
    ASCII)."""
    param, contains = dialect.param, dialect.contains
    where: list[str] = []
    args: list[Any] = []
    if search:
        args.append(search.lower())
        where.append(contains("lower(device)", param(len(args))))
    if job is not None:
        args.append(job)
        where.append(f"device IN (SELECT device FROM buckets WHERE job = {param(len(args))})")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    direction = "DESC" if descending else "ASC"
    window = f"LIMIT {param(len(args) + 1)} OFFSET {param(len(args) + 2)}"
    if sort == "device":
        page = (
            f"SELECT DISTINCT device FROM buckets{condition} ORDER BY device {direction} {window}"
        )
    else:
        order = f"{SORT_EXPRESSIONS[sort]} {direction}, device ASC"
        page = f"SELECT device FROM buckets{condition} GROUP BY device ORDER BY {order} {window}"
    return DevicePageSQL(
        f"SELECT COUNT(DISTINCT device) FROM buckets{condition}",
        args,
        page,
        [*args, limit, offset],
    )
