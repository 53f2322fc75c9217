"""How the history keeps a bucket's past contents without copying the bucket on every write.

Each history row records who wrote, when and which keys (``model.encode_changes``), and, while
the version is kept, one of two texts: a **delta**, the new values of the keys the version
added or changed, or a **full copy** of the bucket. A write stores a delta, and a full copy
every ``history_versions`` versions (``planner``). A version's contents are the nearest full
copy at or below it with the deltas after it applied in order (version 1 applies its delta to
the empty bucket); a version is kept while that chain is whole and it is not below the
bucket's ``kept_from``, which the write that last forgot set (``planner``). A
watcher needs no rebuilding: a change's delta holds exactly the values it reports.

``kept_from`` is the rule; the texts below it are removed from the rows when the store gets
to them (at once on PostgreSQL, a page at a time on SQLite), and read as removed until then.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .values import JSONObject, decode

__all__ = ["Past", "Rebuild", "contents", "kept_flags"]


@dataclass(slots=True)
class Past:
    """A history row as the rebuild reads it (texts opened)."""

    version: int
    changes: str  # ``model.encode_changes``
    full: str | None  # the bucket's text at this version
    delta: str | None  # the new values of the keys this version added or changed


class Rebuild:
    """One bucket's past contents, rebuilt a row at a time in ascending version order."""

    def __init__(self, lowest: int = 0) -> None:
        """``lowest``: the bucket's ``kept_from`` (older versions are not kept)."""
        self.state: JSONObject | None = None
        self.last = 0
        self.lowest = lowest

    def next(self, row: Past) -> JSONObject | None:
        """The contents at ``row``'s version (None where not kept). The dict is only valid
        until the next row: copy it to keep it (a shallow copy will do, values are replaced
        whole)."""
        state = self.state
        if row.version < self.lowest:
            state = None
        elif row.full is not None:
            state = decode(row.full)
        elif not _kept(row.version, False, row.delta is not None, state is not None, self.last):
            state = None
        else:
            if row.version == 1 or state is None:  # version 1 changes the empty bucket
                state = {}
            for key in json.loads(row.changes)[2]:  # the keys it removed
                state.pop(key, None)
            assert row.delta is not None
            state.update(decode(row.delta))
        self.state, self.last = state, row.version
        return state


def _kept(version: int, full: bool, delta: bool, below_kept: bool, below: int) -> bool:
    """Whether a version is kept: it has a full copy, or a delta on top of a kept version
    just below it (``below``, whether ``below_kept``) or of the empty bucket (version 1)."""
    return full or (delta and (version == 1 or (below_kept and below == version - 1)))


def contents(rows: Iterable[Past], lowest: int = 0) -> Iterator[tuple[int, JSONObject | None]]:
    """Each row's version and contents (None where not kept), for one bucket's rows in
    ascending version order, none below ``lowest`` (its ``kept_from``; each dict valid until
    the next, as :meth:`Rebuild.next`)."""
    rebuild = Rebuild(lowest)
    for row in rows:
        yield row.version, rebuild.next(row)


def kept_flags(rows: Iterable[tuple[int, bool, bool]], lowest: int = 0) -> dict[int, bool]:
    """Which versions are kept, from ``(version, has a full copy, has a delta)`` in ascending
    order: the same rule as :func:`contents`, without decoding anything."""
    flags: dict[int, bool] = {}
    kept = False
    last = 0
    for version, full, delta in rows:
        kept = flags[version] = version >= lowest and _kept(version, full, delta, kept, last)
        last = version
    return flags
