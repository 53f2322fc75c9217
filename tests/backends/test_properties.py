"""Property-based tests: a bucket behaves like a plain dict, and JSON round-trips exactly."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicebucket import Agent, Limits, Store
from devicebucket.core.values import json_path

from ..conftest import STORE_KINDS, open_test_store

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(["a", "b", "c", "token"]) | st.text(max_size=6)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.dictionaries(keys, json_values, max_size=4)),
        st.tuples(st.just("delete"), st.lists(keys, max_size=3)),
        st.tuples(st.just("clear"), st.just(None)),
    ),
    max_size=12,
)


KEEP = 3


def exact(value: Any) -> str:
    """JSON text: tells 1, 1.0 and True apart, unlike ==."""
    return json.dumps(value, sort_keys=False)


class Harness:
    """One store and one event loop for all of a test's examples; a new device per example."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.runner = asyncio.Runner()
        # A short history: its full copies and forgetting come within a dozen writes.
        self.opened = open_test_store(kind, tmp_path, Limits(history_versions=KEEP))
        self.store: Store = self.runner.run(self.opened.__aenter__())
        self.devices = (f"device-{n}" for n in itertools.count())

    def close(self) -> None:
        self.runner.run(self.opened.__aexit__(None, None, None))
        self.runner.close()


@pytest.fixture(params=STORE_KINDS, scope="module")
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    h = Harness(request.param, tmp_path_factory.mktemp("properties"))
    yield h
    h.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_any_sequence_matches_a_plain_dict(harness: Harness, ops: list[tuple[str, Any]]) -> None:
    device = next(harness.devices)
    bucket = Agent(harness.store, device).utils.deviceBucket

    async def run() -> None:
        model: dict[str, Any] = {}
        version = 0
        for name, argument in ops:
            before = exact(model)
            if name == "set":
                result = await bucket.set(argument)
                model.update(argument)
            elif name == "delete":
                result = await bucket.delete(*argument)
                for key in argument:
                    model.pop(key, None)
            else:
                result = await bucket.clear()
                model.clear()
            version += exact(model) != before
            assert result["success"], result
            assert exact(result["deviceBucket"]) == exact(model)
        stored = await harness.store.get(device)
        assert exact(stored.data) == exact(model)
        assert stored.version == version

    harness.runner.run(run())


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_every_kept_version_reads_back_as_it_was(
    harness: Harness, ops: list[tuple[str, Any]]
) -> None:
    """The history rebuilds each kept version from deltas and full copies: every version it
    says it keeps reads back exactly as it was written, and the last ones are all kept."""
    device = next(harness.devices)
    store = harness.store

    async def run() -> None:
        written: dict[int, str] = {}
        for name, argument in ops:
            if name == "set":
                snapshot = await store.merge(device, argument)
            elif name == "delete":
                snapshot = await store.delete(device, argument)
            else:
                snapshot = await store.clear(device)
            if snapshot.version:
                written[snapshot.version] = exact(snapshot.data)
        changes = await store.history(device, limit=100)
        assert [c.version for c in changes] == sorted(written, reverse=True)
        kept = [c.version for c in changes if c.kept]
        assert kept == sorted(written, reverse=True)[: len(kept)]  # the newest, no gaps
        assert len(kept) >= min(KEEP, len(written))
        for version in kept:
            assert exact((await store.at_version(device, version)).data) == written[version]

    harness.runner.run(run())


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=json_values)
def test_any_json_value_round_trips_unchanged(harness: Harness, value: Any) -> None:
    device = next(harness.devices)
    bucket = Agent(harness.store, device).utils.deviceBucket

    async def run() -> None:
        written = await bucket.set({"v": value})
        read = await bucket.get()
        assert written["success"]
        assert read["success"]
        assert exact(written["deviceBucket"]["v"]) == exact(value)
        assert exact(read["deviceBucket"]["v"]) == exact(value)

    harness.runner.run(run())


@given(st.lists(st.one_of(st.text(), st.integers(min_value=0, max_value=99)), max_size=5))
def test_json_path_is_always_valid_text(parts: list[str | int]) -> None:
    path = json_path(parts)
    assert path.startswith("$")
    assert path.count("[") >= sum(isinstance(p, int) for p in parts)
