"""The layers stay visible and one-way: core <- zoo <- harness <- serving <- runners (README, "Architecture").

The core (`import cachedit`) imports only torch, diffusers and their dependencies; the zoo (replicas, embedded
models, data) builds on the core; the harness (runs, sweeps, benchmarks, metrics, plots, tuning) on both; the server
on all three. A module never imports a higher layer, and never imports a private name from another layer. Each
schema lives in the lowest layer that reads it: the cache schemas (`cachedit/caches/`) and the TaylorSeer, SCM, CFG
and parallel schemas (`cachedit/configs.py`) in the core, the model schema in the zoo (`cachedit/zoo/model_config.py`),
the run and tune schemas in the harness (`cachedit/harness/run_config.py`), the server's in serving
(`cachedit/serving/config.py`).
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["core", "zoo", "harness", "serving", "runners"]


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name inside this repository; None for a third-party module."""
    parts = module.split(".")
    if parts[0] == "runners":
        return "runners"
    if parts[0] != "cachedit":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ("zoo", "harness", "serving") else "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, source: str | None = None):
    """``(imported module, [names])`` for every import of `path` (or of `source` as if it lay there), relative ones
    resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            yield target, [alias.name for alias in node.names]


def _file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def _is_module(module: str) -> bool:
    return _file(module) is not None


def public_names(module: str, source: str | None = None) -> list[str]:
    """The module's `__all__` (every module another layer imports from must have one); `source` stands for its text."""
    for node in ast.parse(_file(module).read_text() if source is None else source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module} is imported by another layer but marks no public names (`__all__`)")


SOURCES = sorted([*(ROOT / "cachedit").rglob("*.py"), *(ROOT / "runners").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_only_its_own_and_lower_layers(path):
    own = layer_of(module_name(path))
    for target, names in imports(path):
        layer = layer_of(target)
        if layer is None:
            continue
        assert LAYERS.index(layer) <= LAYERS.index(own), f"{module_name(path)} ({own}) imports {target} ({layer})"
        if layer != own:
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{module_name(path)} imports private {private} from {target} ({layer} layer)"
            assert not any(part.startswith("_") for part in target.split(".")), f"{module_name(path)} imports {target}"
            unmarked = [n for n in names if not _is_module(f"{target}.{n}") and n not in public_names(target)]
            assert not unmarked, f"{module_name(path)} imports {unmarked}, which {target}.__all__ does not mark public"


def test_the_core_imports_no_harness_dependency():
    """`import cachedit` (and loading a config) pulls in none of what only the runners, sweeps and plots need."""
    harness = ("hydra", "matplotlib", "sklearn", "torchmetrics", "fastapi", "uvicorn", "optuna",
               "cachedit.harness", "cachedit.zoo", "cachedit.serving")
    code = (f"import sys, cachedit; cachedit.load_config({{'Fn_compute_blocks': 1}}); "
            f"print(sorted(m for m in {harness!r} if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_layer_check_resolves_relative_imports():
    """What the check above reads: a relative import from a core module resolves to the harness, a higher layer."""
    found = list(imports(ROOT / "cachedit" / "hooks" / "engine.py", "from ..harness.runs import preflight\n"))
    assert found == [("cachedit.harness.runs", ["preflight"])]
    assert (layer_of("cachedit.hooks.engine"), layer_of(found[0][0])) == ("core", "harness")


def schema_homes() -> list[Path]:
    """The modules that define typed schemas: those whose dataclasses check their fields with `check_types`."""
    return [path for path in SOURCES if any(target == "cachedit.config_types" and "check_types" in names
                                            for target, names in imports(path))]


def _defined_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
        return node.name
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return targets[0].id if len(targets) == 1 and isinstance(targets[0], ast.Name) else None


def _exported(path: Path) -> list[str]:
    """What a package's `__init__` re-exports (its `__all__`): a re-export is no read."""
    if path.name != "__init__.py":
        return []
    try:
        return public_names(module_name(path))
    except AssertionError:  # no `__all__`
        return []


def lowest_reader(home: Path, source: str | None = None, readers: dict[Path, str] | None = None) -> dict[str, str | None]:
    """For each public name of a schema module: the lowest layer whose code reads it, through an import from another
    module, or through what reads it in the module itself (a schema's field type, a function, a registration run at
    import time: read in the module's own layer). `source` and `readers` (path -> text) stand in for files' texts."""
    home_module, own = module_name(home), layer_of(module_name(home))
    source = home.read_text() if source is None else source
    definitions, refers, lowest = {}, {}, {}
    for node in ast.parse(source).body:
        read = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        name = _defined_name(node)
        if name is None or name == "__all__":
            lowest.update({n: own for n in read})  # module-level code runs on import
        else:
            definitions[name], refers[name] = node, read - {name}

    def lower(name: str, layer: str) -> bool:
        if name in definitions and (name not in lowest or LAYERS.index(layer) < LAYERS.index(lowest[name])):
            lowest[name] = layer
            return True
        return False

    for name in public_names("cachedit"):  # the library's public API (`cachedit.X`) is read by its users: the core
        lower(name, "core")
    readers = readers or {}
    for path in sorted({*SOURCES, *readers} - {home}):
        exported = set(_exported(path))
        for target, imported in imports(path, readers.get(path)):
            for name in set(imported) - exported if target == home_module else ():
                lower(name, layer_of(module_name(path)))
    changed = True
    while changed:  # what a read name reads is read in that layer too
        changed = False
        for name, layer in list(lowest.items()):
            for other in refers.get(name, ()):
                changed |= lower(other, layer)
    return {name: lowest.get(name) for name in sorted(set(public_names(home_module, source)) & definitions.keys())}


def test_the_schema_homes_are_found_in_each_layer():
    homes = {module_name(path): layer_of(module_name(path)) for path in schema_homes()}
    assert {"cachedit.configs": "core", "cachedit.zoo.model_config": "zoo", "cachedit.harness.run_config": "harness",
            "cachedit.serving.config": "serving"}.items() <= homes.items()


@pytest.mark.parametrize("home", schema_homes(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_schema_lives_in_the_lowest_layer_that_reads_it(home):
    """A schema only a higher layer reads does not sit in a lower one (`RunConfig` is the harness's, not the
    core's), and a schema nobody reads does not exist. The runners are entry points and hold no schemas: what only
    they read (`ServeConfig`, the root of `conf/serve.yaml`) lives in the highest library layer, serving."""
    own = layer_of(module_name(home))
    home_of = {layer: LAYERS[min(LAYERS.index(layer), LAYERS.index("serving"))] for layer in LAYERS}
    misplaced = {name: layer for name, layer in lowest_reader(home).items() if home_of.get(layer) != own}
    assert not misplaced, f"{module_name(home)} ({own}) holds schemas read lowest in (None: never read) {misplaced}"


def test_the_schema_check_sees_a_schema_only_a_higher_layer_reads():
    """What the check above reads: a run schema written into the core's configs and imported from there by the
    harness is read lowest in the harness; a schema nobody imports is read nowhere."""
    home = ROOT / "cachedit" / "configs.py"
    source = home.read_text().replace("__all__ = [", '__all__ = ["RunConfig", "ModelConfig", "Unread", ') + (
        "\n\nclass RunConfig:\n    model: ModelConfig\n\n\nclass ModelConfig:\n    pass\n\n\nclass Unread:\n    pass\n")
    runs = ROOT / "cachedit" / "harness" / "runs.py"
    found = lowest_reader(home, source, {runs: "from ..configs import RunConfig\n"})
    assert (found["RunConfig"], found["ModelConfig"], found["Unread"], found["ParallelConfig"]) == ("harness", "harness", None, "core")


ADAPTERS = sorted((ROOT / "cachedit" / "adapters").rglob("*.py"))


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_adapters_never_import_the_hooks(path):
    """Within the core the adapters describe (layouts, call facts, forward patches) and the hooks attach: the
    arrow only runs from hooks and plan to adapters."""
    found = [target for target, _ in imports(path) if target == "cachedit.hooks" or target.startswith("cachedit.hooks.")]
    assert not found, f"{module_name(path)} imports {found}"
