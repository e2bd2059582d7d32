"""`zzhub demo` / `serve` on a machine missing a system library: one line that names it."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from hub import cli


def test_every_media_package_loads_here() -> None:
    assert cli.missing_native_library() is None


def _failing(name: str, message: str) -> object:
    real = importlib.import_module

    def import_module(module: str, package: str | None = None) -> ModuleType:
        if module == name:
            raise ImportError(message)
        return real(module, package)

    return import_module


def test_a_missing_library_is_named_with_its_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "libGL.so.1: cannot open shared object file: No such file or directory"
    monkeypatch.setattr(importlib, "import_module", _failing("cv2", message))
    assert cli.main(["demo", "--port", "1"]) == cli.EXIT_SYSTEM
    err = capsys.readouterr().err
    assert "'cv2'" in err and "libGL.so.1" in err and "apt-get install libgl1" in err
    assert "Traceback" not in err


def test_an_unknown_library_gets_a_search_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    message = "libfoo-9.so.2: cannot open shared object file: No such file or directory"
    monkeypatch.setattr(importlib, "import_module", _failing("av", message))
    problem = cli.missing_native_library()
    assert problem is not None
    assert "libfoo-9.so.2" in problem and "apt-file search libfoo-9.so.2" in problem


def test_serve_checks_before_it_listens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(importlib, "import_module", _failing("numpy", "numpy is broken here"))
    assert cli.main(["serve", "-c", "config/example.yaml"]) == cli.EXIT_SYSTEM
    assert "cannot load the Python package 'numpy': numpy is broken here" in capsys.readouterr().err
