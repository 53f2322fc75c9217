"""The JavaScript client's committed files are what its sources make: the wire types are
generated from the server's OpenAPI document (openapi-typescript), and the build in
``clients/js/dist`` (which the Python package ships for ``devicebucket run``) is tsc's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devicebucket.web.openapi import openapi_document

from .conftest import ROOT, requires

CLIENT = ROOT / "clients" / "js"
BIN = CLIENT / "node_modules" / ".bin"


@pytest.fixture(autouse=True)
def _installed() -> None:
    requires((BIN / "tsc").exists(), "clients/js/node_modules is missing (cd clients/js && npm ci)")


def test_the_cli_prints_the_servers_openapi_document() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "devicebucket", "openapi"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(printed) == openapi_document()


def test_the_wire_types_are_generated_from_the_openapi_document(tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(openapi_document()))
    subprocess.run(
        [BIN / "openapi-typescript", document, "-o", tmp_path / "wire.ts"],
        capture_output=True,
        check=True,
    )
    committed = (CLIENT / "src" / "wire.ts").read_text()
    assert (tmp_path / "wire.ts").read_text() == committed, (
        "clients/js/src/wire.ts drifted from the OpenAPI document: regenerate it with"
        " `devicebucket openapi > /tmp/openapi.json &&"
        " npx openapi-typescript /tmp/openapi.json -o src/wire.ts` in clients/js"
    )


def test_the_committed_build_is_the_sources(tmp_path: Path) -> None:
    subprocess.run(
        [BIN / "tsc", "-p", CLIENT / "tsconfig.json", "--outDir", tmp_path],
        capture_output=True,
        check=True,
    )
    built = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    dist = CLIENT / "dist"
    committed = {p.relative_to(dist): p.read_text() for p in dist.rglob("*") if p.is_file()}
    assert built == committed, "clients/js/dist is stale: run `npm run build` in clients/js"
