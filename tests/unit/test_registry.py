"""Registry semantics: lazy entries, entry points, collisions, did-you-mean."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from arena import registry as reg
from arena.errors import RegistryCollisionError, UnknownNameError


def test_lazy_entry_is_not_imported_until_used(monkeypatch):
    mod = types.ModuleType("fake_lazy_mod")
    mod.OBJ = object()
    r = reg.Registry("thing")
    r.register("x", lazy="fake_lazy_mod:OBJ")
    assert "fake_lazy_mod" not in sys.modules
    assert isinstance(r.entry("x"), reg.Lazy)
    monkeypatch.setitem(sys.modules, "fake_lazy_mod", mod)
    assert r.get("x") is mod.OBJ
    assert r.entry("x") is mod.OBJ  # materialised once


def test_collision_is_an_error():
    r = reg.Registry("thing")
    r.register("x", lazy="a:b")
    with pytest.raises(RegistryCollisionError, match="already registered"):
        r.register("x", lazy="c:d")
    r.register("x", lazy="a:b")  # the identical entry again is harmless


def test_unknown_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match="did you mean 'scan-depth'"):
        reg.get_task("scan-dept")
    with pytest.raises(UnknownNameError, match="did you mean .*'rnn'"):
        reg.get_arch("rnm")


def test_entry_point_plugins_are_lazy_and_named(monkeypatch):
    mod = types.ModuleType("fake_plugin_mod")
    from arena.registry import get_arch

    real = get_arch("rnn")
    from dataclasses import replace

    mod.SPEC = replace(real, name="fake-rnn")
    monkeypatch.setitem(sys.modules, "fake_plugin_mod", mod)
    eps = [EntryPoint(name="fake-rnn", value="fake_plugin_mod:SPEC", group="arena.architectures")]
    monkeypatch.setattr(reg, "entry_points", lambda group: eps if group == "arena.architectures" else [])
    monkeypatch.delenv("ARENA_NO_PLUGINS", raising=False)
    r = reg.Registry("architecture", group="arena.architectures", coerce=reg._coerce_arch)
    assert r.names() == ["fake-rnn"]
    assert isinstance(r.entry("fake-rnn"), reg.Lazy)
    spec = r.get("fake-rnn")
    assert spec.name == "fake-rnn" and spec.source == "plugin"


def test_plugins_can_be_disabled(monkeypatch):
    eps = [EntryPoint(name="p", value="nowhere:X", group="arena.architectures")]
    monkeypatch.setattr(reg, "entry_points", lambda group: eps)
    monkeypatch.setenv("ARENA_NO_PLUGINS", "1")
    r = reg.Registry("architecture", group="arena.architectures")
    assert r.names() == []


def test_entry_point_name_must_match_spec(monkeypatch):
    mod = types.ModuleType("fake_mismatch_mod")
    mod.SPEC = reg.get_arch("rnn")  # named "rnn"
    monkeypatch.setitem(sys.modules, "fake_mismatch_mod", mod)
    r = reg.Registry("architecture", coerce=reg._coerce_arch)
    r.register("other", lazy="fake_mismatch_mod:SPEC")
    with pytest.raises(Exception, match="names must match"):
        r.get("other")


def test_broken_plugin_import_names_the_plugin():
    r = reg.Registry("architecture", coerce=reg._coerce_arch)
    r.register("broken", lazy="module_that_does_not_exist_xyz:SPEC")
    with pytest.raises(Exception, match="broken.*failed to load"):
        r.get("broken")


def test_every_builtin_file_is_registered():
    """A new file in architectures/ or tasks/ must appear in the built-in maps (litgpt-style sync test)."""
    from pathlib import Path

    import arena.architectures
    import arena.tasks

    for pkg, mapping in ((arena.architectures, reg.BUILTIN_ARCHS), (arena.tasks, reg.BUILTIN_TASKS)):
        modules = {t.split(":")[0].rsplit(".", 1)[1] for t in mapping.values()}
        for f in Path(pkg.__file__).parent.glob("*.py"):
            if f.stem.startswith("_"):
                continue
            text = f.read_text()
            defines = "arch_spec(" in text or "(Task)" in text
            if defines:
                assert f.stem in modules, f"{f.name} defines an entry but is not in the built-in registry map"


def test_every_builtin_loads():
    for name in reg.ARCHS.names():
        assert reg.get_arch(name).name == name
    for name in reg.TASKS.names():
        assert reg.get_task(name).name == name
