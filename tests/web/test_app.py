"""The app and its worker factory (``web.app``): a server's worker settles its heap and its
threads' turns; an app made by a library user leaves the host's collector and interpreter as
they were."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

from devicebucket import SQLiteStore
from devicebucket.web.app import SWITCH_SECONDS, YOUNG_OBJECTS, create_app

WORKER = """
import gc, json
from devicebucket.web.app import app_from_env
import sys
before = gc.get_freeze_count(), gc.get_threshold()[0], sys.getswitchinterval()
app_from_env()
print(json.dumps([*before, gc.get_freeze_count(), gc.get_threshold()[0], sys.getswitchinterval()]))
"""


def test_a_worker_settles_its_heap_once_built_and_hands_the_interpreter_over_sooner(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    env["DEVICEBUCKET_URL"] = f"sqlite:///{tmp_path / 'w.db'}"
    env["DEVICEBUCKET_ADMIN_TOKEN"] = "a-worker-admin-token-0123456789"
    out = subprocess.run(
        [sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, check=True
    )
    frozen_before, young_before, switch_before, frozen, young, switch = json.loads(out.stdout)
    assert frozen_before == 0  # nothing frozen as the process began
    assert young_before != YOUNG_OBJECTS  # CPython's own threshold then (700 on 3.11-3.13)
    assert frozen > 20_000  # the modules and the app: no full collection walks them again
    assert young == YOUNG_OBJECTS
    # A big job write's check on its thread leaves the event loop waiting less each time.
    assert (switch_before, switch) == (0.005, SWITCH_SECONDS)


def test_an_app_made_by_a_library_user_leaves_the_collector_alone(tmp_path: Path) -> None:
    before = gc.get_freeze_count(), gc.get_threshold(), sys.getswitchinterval()
    create_app(SQLiteStore(tmp_path / "lib.db"))
    assert (gc.get_freeze_count(), gc.get_threshold(), sys.getswitchinterval()) == before


def test_the_app_loads_jsonschema_as_it_is_built(tmp_path: Path) -> None:
    # Not at a worker's first job write, inside its write transaction (the store's lock).
    program = (
        "import sys\n"
        "from devicebucket import SQLiteStore\n"
        "from devicebucket.web.app import create_app\n"
        "before = 'jsonschema' in sys.modules\n"
        f"create_app(SQLiteStore({str(tmp_path / 's.db')!r}))\n"
        "print(before, 'jsonschema' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.split() == ["False", "True"]
