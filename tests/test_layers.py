"""The layers stay visible and one-way: core <- zoo <- harness <- serving <- runners (README, "Architecture").

The core (`import cachedit`) imports only torch, diffusers and their dependencies; the zoo (replicas, embedded
models, data) builds on the core; the harness (runs, sweeps, benchmarks, metrics, plots, tuning) on both; the server
on all three. A module never imports a higher layer, and never imports a private name from another layer.
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


def public_names(module: str) -> list[str]:
    """The module's `__all__` (every module another layer imports from must have one)."""
    for node in ast.parse(_file(module).read_text()).body:
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


ADAPTERS = sorted((ROOT / "cachedit" / "adapters").rglob("*.py"))


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_adapters_never_import_the_hooks(path):
    """Within the core the adapters describe (layouts, call facts, forward patches) and the hooks attach: the
    arrow only runs from hooks and plan to adapters."""
    found = [target for target, _ in imports(path) if target == "cachedit.hooks" or target.startswith("cachedit.hooks.")]
    assert not found, f"{module_name(path)} imports {found}"
