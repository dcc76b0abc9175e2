"""The dependencies follow the layers: `pip install cachedit` brings what the core imports (and the config stack),
the `run` extra what the zoo and the harness add, the `serve` extra what the server and the runners add.

Each layer's modules are found through the layer map of tests/test_layers.py, and each third-party import is named
by the distribution that installs it, so a new import in any module is checked without editing this file.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import tomllib
from functools import cache
from importlib.metadata import packages_distributions

from tests.test_layers import LAYERS, ROOT, SOURCES, layer_of, module_name

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# What each layer may import: the base dependencies, plus the extras named here.
EXTRAS_OF_LAYER = {"core": [], "zoo": ["run"], "harness": ["run"], "serving": ["run", "serve"], "runners": ["run", "serve"]}
CONFIG_STACK = {"hydra-core"}  # base, though no core module imports it: the `conf/` groups compose with it
HARNESS_ONLY = {"matplotlib", "scikit-learn", "torchmetrics"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group())


def declared(extras: list[str]) -> set[str]:
    """The distributions the base dependencies and `extras` name, following `cachedit[...]` references."""
    names, pending, seen = set(), [None, *extras], set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]:
            name = requirement_name(requirement)
            if name == PROJECT["name"]:
                pending += re.search(r"\[(.*)\]", requirement).group(1).split(",")
            else:
                names.add(name)
    return names


def guarded(tree: ast.AST) -> set[int]:
    """Line numbers of imports inside a `try` that catches ImportError: optional, and the handler says what to
    install."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(handler.type, ast.Name) and handler.type.id in ("ImportError", "ModuleNotFoundError")
            for handler in node.handlers
        ):
            lines |= {n.lineno for statement in node.body for n in ast.walk(statement) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def third_party_imports(layer: str, sources: dict | None = None) -> dict[str, dict[str, list[str]]]:
    """{"required" | "optional": {top-level module: [files importing it]}} over every module of `layer`; `sources`
    (path -> text) adds or stands in for files."""
    found = {"required": {}, "optional": {}}
    sources = sources or {}
    for path in sorted({*SOURCES, *sources}):
        if layer_of(module_name(path)) != layer:
            continue
        tree = ast.parse(sources[path] if path in sources else path.read_text())
        imported = []  # (line, top-level module)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                imported.append((node.lineno, node.module.split(".")[0]))
        # A package the module imports under a guard is optional throughout it (its other imports run behind that one).
        optional = {top for line, top in imported if line in guarded(tree)}
        for line, top in imported:
            if top not in sys.stdlib_module_names and top not in ("__future__", "cachedit", "runners"):
                kind = "optional" if top in optional else "required"
                found[kind].setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


@cache
def installed() -> dict[str, list[str]]:
    return packages_distributions()  # reads every installed distribution's file list: once


def distributions(module: str) -> set[str]:
    """The distributions that install top-level `module` (empty where none is installed here)."""
    return {normalized(name) for name in installed().get(module, [])}


def test_every_layer_has_modules_with_imports_to_check():
    assert all(third_party_imports(layer)["required"] for layer in LAYERS)
    assert {"torch", "diffusers"} <= third_party_imports("core")["required"].keys()
    assert {"matplotlib", "sklearn", "torchmetrics"} <= {
        module for layer in ("zoo", "harness") for module in third_party_imports(layer)["required"]}


def undeclared(layer: str, sources: dict | None = None) -> list[str]:
    """The imports of `layer` its install does not declare: a required import must be named by the base dependencies
    or the layer's extras, an optional one (inside `try: ... except ImportError`) by some extra."""
    extras = EXTRAS_OF_LAYER[layer]
    allowed, every_extra = declared(extras), declared(list(PROJECT["optional-dependencies"]))
    missing = []
    for kind, modules in third_party_imports(layer, sources).items():
        for module, files in modules.items():
            names = distributions(module)
            if not names & (allowed if kind == "required" else every_extra):
                missing.append(f"{layer} imports `{module}` ({sorted(names) or 'not installed'}; {files[0]}) "
                               f"but {' + '.join(['base', *extras]) if kind == 'required' else 'no extra'} names it")
    return missing


def test_each_layer_imports_only_what_its_install_declares():
    """Core: the base dependencies; zoo and harness: base + `run`; serving and runners: base + `run` + `serve`."""
    missing = [line for layer in LAYERS for line in undeclared(layer)]
    assert not missing, "\n".join(missing)


def test_the_base_dependencies_are_what_the_core_imports_plus_the_config_stack():
    """`pip install cachedit` brings no harness dependency (matplotlib, scikit-learn, torchmetrics): those come with
    the `run` extra, and anything the base names the core imports."""
    base = declared([])
    core = {name for module in third_party_imports("core")["required"] for name in distributions(module)}
    assert not base & HARNESS_ONLY
    assert HARNESS_ONLY <= declared(["run"])
    assert base == (core & base) | CONFIG_STACK, f"base dependencies the core does not import: {sorted(base - core - CONFIG_STACK)}"


def test_the_test_extra_installs_everything_a_run_and_the_server_need():
    assert declared(["run", "serve"]) <= declared(["dev"])
    assert declared(["run"]) <= declared(["sweep"])  # a sweep's jobs are runs


def test_the_dependency_check_names_an_import_no_install_declares():
    """What the checks above read: a core module importing the harness's scikit-learn, or PyYAML (installed here,
    declared nowhere), is named; an optional import of an extra's package passes, one of an undeclared one does not."""
    core, harness = ROOT / "cachedit" / "new_core.py", ROOT / "cachedit" / "harness" / "new.py"
    assert undeclared("core", {core: "import sklearn.linear_model\nfrom yaml import safe_load\n"}) == [
        "core imports `sklearn` (['scikit-learn']; cachedit/new_core.py) but base names it",
        "core imports `yaml` (['pyyaml']; cachedit/new_core.py) but base names it",
    ]
    assert undeclared("harness", {harness: "import sklearn\ntry:\n    import cache_dit\nexcept ImportError:\n    pass\n"}) == []
    assert undeclared("harness", {harness: "try:\n    import yaml\nexcept ModuleNotFoundError:\n    pass\n"}) == [
        "harness imports `yaml` (['pyyaml']; cachedit/harness/new.py) but no extra names it"]


# Runs a real diffusers pipeline cached, with the harness-only packages made unimportable: `None` in `sys.modules`
# makes `import matplotlib` (and every `matplotlib.x`) raise ImportError.
WITHOUT_HARNESS_PACKAGES = textwrap.dedent("""
    import sys
    for name in ("matplotlib", "sklearn", "torchmetrics"):
        sys.modules[name] = None

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    import cachedit

    torch.manual_seed(0)
    transformer = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                        num_layers=4, sample_size=8, patch_size=2, num_embeds_ada_norm=10).eval()
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4, sample_size=16).eval()
    pipe = DiTPipeline(transformer=transformer, vae=vae, scheduler=DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)

    def generate():
        return pipe(class_labels=[1], num_inference_steps=5, guidance_scale=1.0, output_type="np",
                    generator=torch.Generator().manual_seed(0)).images

    uncached = generate()
    cachedit.enable_cache(pipe, cachedit.DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=0.0))
    exact = bool((generate() == uncached).all())
    cachedit.disable_cache(pipe)
    cachedit.enable_cache(pipe, cachedit.load_config({"Fn_compute_blocks": 1, "residual_diff_threshold": 10.0,
                                                      "max_warmup_steps": 1}))
    generate()
    print(exact, cachedit.summary(pipe)["cached_steps"])
""")


def test_the_core_caches_a_diffusers_pipeline_without_the_harness_packages():
    """`import cachedit`, a config and `enable_cache` on a diffusers pipeline need none of matplotlib, scikit-learn or
    torchmetrics: threshold 0 is exact, a large threshold caches every step after the warmup."""
    result = subprocess.run([sys.executable, "-c", WITHOUT_HARNESS_PACKAGES], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "4"]
