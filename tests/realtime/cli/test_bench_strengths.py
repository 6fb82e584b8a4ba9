"""``bench --quality --strengths``: the list it takes and the table it prints."""

from __future__ import annotations

import pytest

from realtime.cli.bench import format_strengths, parse_strengths


def test_strengths_are_parsed_checked_and_deduplicated() -> None:
    assert parse_strengths(None) == [1.0]
    assert parse_strengths("0.5,1,1.5") == [0.5, 1.0, 1.5]
    assert parse_strengths(" 1 , 1.0,2") == [1.0, 2.0]
    for bad in ("0.5,3", "a,b", ",", "-1"):
        with pytest.raises(ValueError, match="--strengths"):
            parse_strengths(bad)


def test_the_table_has_one_row_per_strength() -> None:
    table = format_strengths({
        "0.5": {"identity_cosine_mean": 0.31, "id_retrieval_top1": 0.5,
                "pose_error_deg_mean": 2.0, "expression_error_mean": 0.01},
        "1.5": {"identity_cosine_mean": 0.62},
    })
    lines = table.splitlines()
    assert len(lines) == 3 and "id cosine" in lines[0]
    assert lines[1].split()[:2] == ["0.5", "0.3100"]
    assert lines[2].split() == ["1.5", "0.6200", "-", "-", "-"]
