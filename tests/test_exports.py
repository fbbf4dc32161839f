"""The public surface: ``__all__``, docstrings, module metadata, final classes, import hygiene.

Modeled on httpx's ``test_all_imports_are_exported`` and trio's
``test_classes_are_final`` (style Rule 1 and Rule 15).
"""

from __future__ import annotations
import __future__

import ast
import copy
import importlib
import inspect
import itertools
import pickle
import subprocess
import sys
import types
from pathlib import Path

import msgspec
import pytest
from packaging.version import Version

import eventlog
import eventlog.testing

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = [eventlog, eventlog.testing]
# Package metadata rather than API: exempt from the docstring rule, as httpx exempts it.
METADATA_NAMES = {"__version__"}


def public_objects(module: types.ModuleType) -> list[tuple[str, object]]:
    return [(name, getattr(module, name)) for name in module.__all__]


def public_classes(module: types.ModuleType) -> list[type]:
    return [obj for _, obj in public_objects(module) if isinstance(obj, type)]


def all_public_classes() -> list[type]:
    return [cls for module in PUBLIC_MODULES for cls in public_classes(module)]


def is_public(name: str) -> bool:
    return not name.startswith("_") or name in METADATA_NAMES


def own_doc(obj: object) -> str:
    """The object's own docstring: a class's ``__doc__`` is never inherited."""
    doc = obj.__doc__ if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return (doc or "").strip()


def import_origin(module: types.ModuleType, name: str) -> tuple[str, str]:
    """(module, name) the public ``name`` is imported from in ``module``'s source."""
    tree = ast.parse(inspect.getsource(module))
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module:
            for alias in statement.names:
                if (alias.asname or alias.name) == name:
                    return statement.module, alias.name
    return module.__name__, name


def attribute_docstrings(module_name: str) -> set[str]:
    """Module-level names followed by a string literal (the Sphinx attribute docstring)."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    documented: set[str] = set()
    for statement, following in itertools.pairwise(tree.body):
        if not (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
            and following.value.value.strip()
        ):
            continue
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        else:
            continue
        documented.update(t.id for t in targets if isinstance(t, ast.Name))
    return documented


module_param = pytest.mark.parametrize(
    "module", PUBLIC_MODULES, ids=[m.__name__ for m in PUBLIC_MODULES]
)


# -- __all__ ---------------------------------------------------------------------------


@module_param
def test_all_is_sorted_without_duplicates(module: types.ModuleType) -> None:
    """__all__ is in sorted order and lists each name once."""
    assert module.__all__ == sorted(module.__all__)
    assert len(set(module.__all__)) == len(module.__all__)


@module_param
def test_all_names_exist_and_are_public(module: types.ModuleType) -> None:
    """Every name in __all__ is an attribute of the module, and none is private."""
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
    assert [name for name in module.__all__ if not is_public(name)] == []


@module_param
def test_all_imports_are_exported(module: types.ModuleType) -> None:
    """Every public name in the module's namespace is in __all__, and nothing else is."""
    namespace = sorted(
        name
        for name, obj in vars(module).items()
        if is_public(name)
        and not isinstance(obj, types.ModuleType)
        and obj is not __future__.annotations
    )
    assert module.__all__ == namespace


# -- docstrings --------------------------------------------------------------------------


@module_param
def test_public_modules_have_docstrings(module: types.ModuleType) -> None:
    """The package and eventlog.testing open with a docstring."""
    assert own_doc(module)


@module_param
def test_public_names_have_docstrings(module: types.ModuleType) -> None:
    """Every class and function has its own docstring; every alias an attribute docstring."""
    undocumented = []
    for name, obj in public_objects(module):
        if name in METADATA_NAMES:
            continue
        if isinstance(obj, type) or callable(obj):
            if not own_doc(obj):
                undocumented.append(name)
        else:
            origin, original = import_origin(module, name)
            if original not in attribute_docstrings(origin):
                undocumented.append(name)
    assert undocumented == []


@module_param
def test_public_methods_and_properties_have_docstrings(module: types.ModuleType) -> None:
    """Methods and properties defined by a public class carry a docstring."""
    undocumented = []
    for cls in public_classes(module):
        for name, attr in vars(cls).items():
            if name.startswith("_"):
                continue
            if isinstance(attr, classmethod | staticmethod):
                target: object = attr.__func__
            elif isinstance(attr, property | types.FunctionType):
                target = attr
            else:
                continue  # data: Struct fields, slots, constants
            if not own_doc(target):
                undocumented.append(f"{cls.__name__}.{name}")
    assert undocumented == []


# -- module metadata ---------------------------------------------------------------------


def test_public_names_report_the_package_as_their_module() -> None:
    """eventlog's classes and functions say eventlog.X, not eventlog._private.X.

    msgspec Structs keep their defining module: msgspec resolves their
    annotations there (a rewritten one broke decoding RemoteConfig).
    """
    modules = {
        name: obj.__module__
        for name, obj in public_objects(eventlog)
        if (isinstance(obj, type) or callable(obj))
        and not (isinstance(obj, type) and issubclass(obj, msgspec.Struct))
    }
    assert modules == dict.fromkeys(modules, "eventlog")
    structs = [
        name
        for name, obj in public_objects(eventlog)
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct)
    ]
    assert sorted(structs) == ["Config", "EventContext", "RemoteConfig", "Stats"]
    for name in structs:  # every Struct of the package decodes from JSON
        msgspec.json.Decoder(getattr(eventlog, name))


@module_param
def test_module_and_qualname_lead_back_to_the_object(module: types.ModuleType) -> None:
    """__module__ + __qualname__ resolve to the object itself, so reprs and pickle work.

    eventlog.testing does not rewrite __module__: its names report the private
    module that defines them (eventlog._events, eventlog.testing._transport, ...).
    """
    broken = []
    for name, obj in public_objects(module):
        if not (isinstance(obj, type) or callable(obj)):
            continue
        module_name: str = getattr(obj, "__module__", "")
        qualname: str = getattr(obj, "__qualname__", "")
        owner = sys.modules.get(module_name)
        if not module_name.startswith("eventlog") or getattr(owner, qualname, None) is not obj:
            broken.append(name)
    assert broken == []


def test_structs_pickle_through_the_public_module() -> None:
    """Config and Stats survive pickle."""
    config = eventlog.Config(base_url="http://127.0.0.1:8787", storage_dir="/nonexistent/spool")
    stats = eventlog.Stats(emitted=3, exported=2, dropped_invalid=1)
    assert pickle.loads(pickle.dumps(config)) == config
    assert pickle.loads(pickle.dumps(stats)) == stats


@pytest.mark.parametrize(
    "exc",
    [eventlog.ConfigError("max_queue_size", "must be >= 1"), eventlog.ExporterShutdownError()],
    ids=["ConfigError", "ExporterShutdownError"],
)
def test_exceptions_survive_pickle_and_copy(exc: eventlog.EventlogError) -> None:
    """Public exceptions cross process boundaries (multiprocessing) and copy.copy intact."""
    for clone in (pickle.loads(pickle.dumps(exc)), copy.copy(exc)):
        assert type(clone) is type(exc)
        assert str(clone) == str(exc)
        assert getattr(clone, "field", None) == getattr(exc, "field", None)


def test_exceptions_share_the_package_base_class() -> None:
    """Every public exception derives from EventlogError; ConfigError is also a ValueError."""
    exceptions = [cls for cls in all_public_classes() if issubclass(cls, BaseException)]
    assert exceptions == [
        eventlog.ConfigError,
        eventlog.EventlogError,
        eventlog.ExporterShutdownError,
        eventlog.InvalidEventError,
    ]
    assert all(issubclass(cls, eventlog.EventlogError) for cls in exceptions)
    assert issubclass(eventlog.ConfigError, ValueError)


# -- classes -----------------------------------------------------------------------------


def test_event_logger_cannot_be_constructed_directly() -> None:
    """EventLogger() raises TypeError pointing at open_event_logger()."""
    with pytest.raises(TypeError, match=r"use eventlog\.open_event_logger\(\)"):
        eventlog.EventLogger()


def test_sync_event_logger_cannot_be_constructed_directly() -> None:
    """SyncEventLogger() raises TypeError pointing at start_event_logger()."""
    with pytest.raises(TypeError, match=r"use eventlog\.start_event_logger\(\)"):
        eventlog.SyncEventLogger()


def test_event_logger_is_final() -> None:
    """EventLogger is decorated with typing.final."""
    assert getattr(eventlog.EventLogger, "__final__", False) is True


@pytest.mark.parametrize(
    "cls",
    [
        cls
        for cls in all_public_classes()
        if not issubclass(cls, BaseException | msgspec.Struct)
        and not getattr(cls, "_is_protocol", False)
    ],
    ids=lambda cls: cls.__qualname__,
)
def test_concrete_classes_are_final(cls: type) -> None:
    """Every public class that is not a Struct, an exception or a Protocol is typing.final."""
    assert getattr(cls, "__final__", False) is True


def test_concrete_final_classes_are_the_expected_ones() -> None:
    """The final-class check above covers the classes it is meant to."""
    finals = sorted(
        cls.__qualname__ for cls in all_public_classes() if getattr(cls, "__final__", False)
    )
    assert finals == [
        "CapturingTransport",
        "EventLogger",
        "FrozenWallClock",
        "SyncEventLogger",
        "SystemClock",
    ]


@pytest.mark.parametrize(
    "cls",
    [cls for cls in all_public_classes() if issubclass(cls, msgspec.Struct)],
    ids=lambda cls: cls.__qualname__,
)
def test_public_structs_are_frozen(cls: type[msgspec.Struct]) -> None:
    """Config, Stats and every wire Struct are msgspec Structs with frozen=True."""
    assert cls.__struct_config__.frozen is True


def test_config_and_stats_are_frozen_structs() -> None:
    """Config and Stats are frozen msgspec Structs whose fields cannot be assigned."""
    config = eventlog.Config(base_url="http://127.0.0.1:8787", storage_dir="/nonexistent/spool")
    stats = eventlog.Stats()
    for instance in (config, stats):
        assert isinstance(instance, msgspec.Struct)
        assert type(instance).__struct_config__.frozen is True
        for field in type(instance).__struct_fields__:
            with pytest.raises(AttributeError):
                setattr(instance, field, getattr(instance, field))


def test_a_snapshot_copies_every_tally() -> None:
    """Stats carries each of the logger's tallies, declared once, with its own value."""
    from eventlog._stats import Counters

    counters = Counters()
    tallies = counters.__struct_fields__
    assert set(tallies) < set(eventlog.Stats.__struct_fields__)
    for value, name in enumerate(tallies, start=1):
        setattr(counters, name, value)
    stats = counters.snapshot(
        emitted=0, queue_depth=0, spool_bytes=0, spool_events=0, spool_disabled=None
    )
    assert [getattr(stats, name) for name in tallies] == list(range(1, len(tallies) + 1))


# -- import hygiene and version -----------------------------------------------------------


def test_import_eventlog_does_not_import_testing_or_pytest() -> None:
    """import eventlog leaves eventlog.testing and pytest unimported."""
    code = (
        "import eventlog, sys; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('eventlog.testing', 'pytest', '_pytest', 'hypothesis'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "[]\n")


# Everything but the command line, the demo and the collector, which run on trio.
_SDK_SCRIPT = """
import pkgutil, sys

# As if neither were installed: importing either raises ImportError.
sys.modules["trio"] = sys.modules["rich"] = None

import anyio, httpx
import eventlog

SKIP = ("eventlog._cli", "eventlog._demo", "eventlog.collector", "eventlog.__main__")
names = []
packages = [eventlog]
while packages:  # walk_packages would import the skipped packages to walk them
    package = packages.pop()
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if not info.name.startswith(SKIP):
            names.append(info.name)
            module = __import__(info.name, fromlist=["_"])
            if info.ispkg:
                packages.append(module)

async def main() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    config = eventlog.Config(base_url="http://127.0.0.1:8787", storage_dir=sys.argv[1])
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("e")
    assert log.stats.exported == 1, log.stats

anyio.run(main, backend="asyncio")
print(len(names))
"""


def test_the_sdk_on_asyncio_imports_neither_trio_nor_rich(tmp_path: Path) -> None:
    """Without trio and rich, every SDK module imports and a logger runs on asyncio."""
    result = subprocess.run(
        [sys.executable, "-c", _SDK_SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert int(result.stdout) > 20  # the walk found the SDK's modules


def test_version_is_a_pep440_string() -> None:
    """eventlog.__version__ is a string in normalized PEP 440 form."""
    assert isinstance(eventlog.__version__, str)
    assert str(Version(eventlog.__version__)) == eventlog.__version__
