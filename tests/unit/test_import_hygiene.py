"""The layers stay apart: engine and broker never pull in Textual, the engine never the broker."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, pkgutil, importlib, sys
import {package}
names = [m.name for m in pkgutil.walk_packages({package}.__path__, "{package}.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({{"modules": sorted(sys.modules), "imported": names}}))
"""


def imported_by(package: str) -> tuple[set[str], list[str]]:
    """Import the package and every module in it in a fresh interpreter; sys.modules after."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(package=package)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return set(data["modules"]), data["imported"]


def layer(modules: set[str], prefix: str) -> set[str]:
    return {m for m in modules if m == prefix or m.startswith(prefix + ".")}


def test_engine_imports_neither_textual_nor_the_broker_nor_the_ui() -> None:
    modules, imported = imported_by("tui_queue.engine")
    assert "tui_queue.engine.worker" in imported and "tui_queue.engine.scenarios" in imported
    assert not layer(modules, "textual")
    assert not layer(modules, "tui_queue.broker")
    assert not layer(modules, "tui_queue.ui")


def test_broker_imports_neither_textual_nor_the_engine() -> None:
    modules, _imported = imported_by("tui_queue.broker")
    assert not layer(modules, "textual")
    assert not layer(modules, "tui_queue.engine")
    assert not layer(modules, "tui_queue.ui")
