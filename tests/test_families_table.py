"""`python -m runners.families`: the table of registry families and the replica (or reason) behind each."""

from __future__ import annotations

from cachedit.adapters import registry
from cachedit.zoo.entries import UNPROVEN
from runners import families


def test_the_table_has_one_row_per_family_with_its_proof(capsys):
    assert families.main([]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| family")]
    assert [row.split(" | ")[0][2:] for row in rows] == list(registry.FAMILIES)
    wan = next(row for row in rows if row.startswith("| wan |"))
    assert "transformer_2, optional: blocks (hidden_out)" in wan and "`model=wan22`" in wan
    for pipeline, reason in UNPROVEN.items():
        assert f"unproven: {reason}" in out, pipeline


def test_an_unknown_family_is_refused_with_the_known_ones(capsys):
    assert families.main(["fluxx"]) == 2
    err = capsys.readouterr().err
    assert "unknown families ['fluxx']" in err and "flux, flux2" in err
