"""Benchmark sections on the tiny preset: the tables have the expected rows (timings never asserted).

The library's sections come from `forcing.bench`; the `train` section from `lightning_modules.bench`.
"""

from __future__ import annotations

import pytest

from forcing import bench
from lightning_modules import bench as train_bench


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of the body rows of every markdown table in `markdown`."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows if not r.startswith("| generator |")]


def test_generation_rows() -> None:
    md = bench.SECTIONS["generation"](bench.parse_args(["generation", "--tiny"]))
    rows = table_rows(md)
    assert [(r[0], r[4]) for r in rows] == [
        (name, decode)
        for name in (
            "few-step chunk-wise (3 frames/block)",
            "few-step frame-wise (1 frame/block)",
            "8-step Euler chunk-wise, CFG w=4",
        )
        for decode in ("no", "yes (identity codec)")
    ]
    assert all(r[1] == "cpu" and r[2] == "fp32" for r in rows)
    assert [r[3] for r in rows] == ["4 + 1"] * 4 + ["8 + 1, CFG batch x2"] * 2
    assert [r[5] for r in rows] == ["6 (2)", "6 (2)", "6 (6)", "6 (6)", "6 (2)", "6 (2)"]
    assert "need CUDA" in md  # the Wan-size rows are announced, not faked


def test_memory_rows_are_flat() -> None:
    md = bench.SECTIONS["memory"](bench.parse_args(["memory", "--tiny"]))
    rows = [r for r in table_rows(md) if r[0].endswith("x")]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("1x", "6", "6", "6"),
        ("5x", "30", "6", "6"),
        ("20x", "120", "6", "6"),
    ]
    assert len({r[4] for r in rows}) == 1 and float(rows[0][4]) > 0  # KV cache bytes
    assert rows[1][5] == rows[2][5]  # per-block peak allocation: 5x == 20x
    assert float(rows[2][6]) > float(rows[1][6])  # only the returned latents grow


def test_train_rows_and_skipped_experiments(capsys) -> None:
    train_bench.main(["train", "--tiny", "--experiments", "teacher_forcing", "no_such_experiment"])
    md = capsys.readouterr().out
    rows = [r for r in table_rows(md) if r[0] != "experiment"]
    assert [(r[0], r[1], r[3], r[5], r[6]) for r in rows] == [
        ("teacher_forcing", "TeacherForcing", "cpu", "2 x 12", "1")
    ]
    assert "`no_such_experiment`: skipped" in md


def test_experiments_are_discovered_from_conf() -> None:
    names = train_bench.discover_experiments()
    assert {"teacher_forcing", "diffusion_forcing", "shapes_teacher"} <= set(names)
    assert names == sorted(p.stem for p in (train_bench.CONF / "experiment").glob("*.yaml"))


def test_train_section_is_registered_by_lightning_modules_only() -> None:
    assert bench.SECTIONS["train"] is train_bench.bench_train  # registered on import of lightning_modules.bench
    assert list(bench.SECTIONS)[:3] == ["backbone", "generation", "memory"]
    assert "train" not in library_sections()


def library_sections() -> list[str]:
    """The sections `python -m forcing.bench` knows, from a fresh interpreter (no lightning_modules)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import json, sys, forcing.bench as b; "
        "print(json.dumps([sorted(b.SECTIONS), sorted(m for m in sys.modules if m.startswith('lightning_modules'))]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    ).stdout
    sections, upward = json.loads(out)
    assert upward == []  # the library imported nothing from lightning_modules
    return sections


def test_cli_runs_named_sections_and_rejects_unknown(capsys) -> None:
    bench.main(["backbone", "--tiny"])
    out = capsys.readouterr().out
    assert "### backbone: `tiny` preset" in out and "| cached streaming" in out
    with pytest.raises(SystemExit):
        bench.parse_args(["no_such_section"])



def test_cpu_stream_alloc_counts_peak_and_per_block_rise() -> None:
    import torch

    def run(on_block) -> None:
        kept = torch.zeros(1_000_000)  # 4 MB, alive for the whole stream
        on_block(0, kept)
        transient = torch.zeros(2_000_000)  # block 1: +8 MB, freed
        del transient
        on_block(1, kept)
        small = torch.zeros(500_000)  # block 2: +2 MB
        del small
        on_block(2, kept)

    peak, block_peak = bench.stream_alloc(run, torch.device("cpu"))
    assert 12_000_000 <= peak < 12_010_000
    assert 8_000_000 <= block_peak < 8_010_000
