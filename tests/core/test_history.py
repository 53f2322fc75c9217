"""The history's rebuild of past contents from full copies and deltas (``core.history``)."""

from __future__ import annotations

from devicebucket.core.history import Past, contents, kept_flags

CHANGED = '[[],["a"],[]]'


def rows(*spec: tuple[int, str | None, str | None, str]) -> list[Past]:
    return [Past(version, changes, full, delta) for version, full, delta, changes in spec]


def rebuilt(past: list[Past]) -> dict[int, dict[str, object] | None]:
    return {v: None if data is None else dict(data) for v, data in contents(past)}


def test_deltas_apply_to_the_empty_bucket_from_version_one() -> None:
    past = rows(
        (1, None, '{"a":1,"b":2}', '[["a","b"],[],[]]'),
        (2, None, '{"a":3}', CHANGED),
        (3, None, "{}", '[[],[],["b"]]'),
    )
    assert rebuilt(past) == {1: {"a": 1, "b": 2}, 2: {"a": 3, "b": 2}, 3: {"a": 3}}
    assert kept_flags((p.version, p.full is not None, p.delta is not None) for p in past) == {
        1: True,
        2: True,
        3: True,
    }


def test_a_full_copy_is_a_base_and_a_gap_or_a_forgotten_row_breaks_the_chain() -> None:
    past = rows(
        (4, None, '{"a":4}', CHANGED),  # no base below it: not kept
        (5, '{"a":5,"z":0}', '{"a":5}', CHANGED),  # a full copy: kept whatever came before
        (6, None, '{"a":6}', CHANGED),
        (8, None, '{"a":8}', CHANGED),  # version 7 is missing: not kept
        (9, None, None, CHANGED),  # forgotten
        (10, '{"a":10}', None, CHANGED),
    )
    expected = {4: None, 5: {"a": 5, "z": 0}, 6: {"a": 6, "z": 0}, 8: None, 9: None}
    assert rebuilt(past) == expected | {10: {"a": 10}}
    flags = kept_flags((p.version, p.full is not None, p.delta is not None) for p in past)
    assert flags == {v: data is not None for v, data in rebuilt(past).items()}
