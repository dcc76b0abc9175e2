"""List the pipeline families cachedit adapts: pipeline classes, cached block lists and patterns, and the offline
replica that proves each family (or why none does).

    python -m runners.families                 # markdown table of every registry family
    python -m runners.families flux wan22      # only these families
"""

from __future__ import annotations

import argparse
import sys

from cachedit.adapters import registry
from cachedit.zoo.dit_families.modular import modular_classes
from cachedit.zoo.entries import UNPROVEN, models_of


def block_lists(family: str) -> str:
    adapters, _ = registry.FAMILIES[family]
    parts = []
    for adapter in adapters:
        lists = ", ".join(f"{attr} ({pattern.name})" for attr, pattern, *_ in adapter.block_lists)
        optional = ", optional" if adapter.optional else ""
        parts.append(lists if len(adapters) == 1 else f"{adapter.transformer}{optional}: {lists}")
    return "; ".join(parts)


def proof(family: str) -> str:
    _, pipelines = registry.FAMILIES[family]
    names = models_of(pipelines)
    modular = [name for name in pipelines if name in modular_classes()]  # run by tests/test_modular.py
    proofs = ["replica " + ", ".join(f"`model={name}`" for name in names)] if names else []
    proofs += ["modular replica " + ", ".join(f"`{name}`" for name in modular)] if modular else []
    if proofs:
        return "; ".join(proofs)
    reasons = [UNPROVEN[name] for name in pipelines if name in UNPROVEN]
    return "unproven: " + ("; ".join(reasons) or "no replica and no reason given")


def table(families: list[str]) -> str:
    rows = ["| family | pipeline classes | cached block lists (pattern) | proven by |", "|---|---|---|---|"]
    for family in families:
        _, pipelines = registry.FAMILIES[family]
        rows.append(f"| {family} | {len(pipelines)}: {', '.join(pipelines)} | {block_lists(family)} | {proof(family)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.families", description=__doc__.split("\n")[0])
    parser.add_argument("families", nargs="*", help="registry family names (default: all)")
    args = parser.parse_args(argv)
    unknown = [f for f in args.families if f not in registry.FAMILIES]
    if unknown:
        print(f"Error: unknown families {unknown}. Known: {', '.join(registry.FAMILIES)}.", file=sys.stderr)
        return 2
    families = args.families or list(registry.FAMILIES)
    print(table(families))
    pipelines = sum(len(registry.FAMILIES[f][1]) for f in families)
    unproven = [f for f in families if proof(f).startswith("unproven")]
    print(f"\n{len(families)} families, {pipelines} pipeline classes; {len(families) - len(unproven)} proven on replicas"
          + (f", unproven: {', '.join(unproven)}" if unproven else "") + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
