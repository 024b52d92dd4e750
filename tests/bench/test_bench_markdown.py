"""The benchmarks' one markdown table writer."""

import pytest

from forcing.bench.markdown import md_header, md_row


def test_header_aligns_each_column_and_rows_join_cells() -> None:
    assert md_header(["a", "b", "c"], "lrr") == ["| a | b | c |", "|---|---:|---:|"]
    assert md_row("x", 2, 3.5) == "| x | 2 | 3.5 |"
    with pytest.raises(ValueError, match="one of l/r per column"):
        md_header(["a", "b"], "l")
