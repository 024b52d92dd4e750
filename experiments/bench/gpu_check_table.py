"""The GPU check's markdown tables, from its stage records (the JSON documents of `<out>/*.json`)."""

from __future__ import annotations

from typing import Any

from forcing.bench.markdown import md_header, md_row

__all__ = ["check_tables"]


def _gib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.1f}"


def _stream_table(doc: dict[str, Any]) -> list[str]:
    columns = ("generator", "latent frames (video)", "rolling cache", "FPS denoise", "FPS end to end",
               "first chunk (s)", "first chunk e2e (s)", "peak mem e2e (GiB)")
    return md_header(columns, "lrrrrrrr") + [
        md_row(f"{r['generator']} ({r['multiple']}x)", f"{r['latent_frames']} ({r['video_frames']})",
               r["cache_frames"], f"{r['fps_denoise']:.2f}", f"{r['fps_end_to_end']:.2f}",
               f"{r['first_chunk_s']:.3f}", f"{r['first_chunk_s_end_to_end']:.3f}", _gib(r["peak_mem_bytes"]))
        for r in doc["rows"]
    ]


def _train_table(doc: dict[str, Any]) -> list[str]:
    columns = ("experiment", "paradigm", "precision", "batch x latent frames", "iterations",
               "s / iteration (mean)", "s (median)", "peak mem (GiB)", "notes")
    lines = md_header(columns, "llllrrrrl") + [
        md_row(r["experiment"], r["paradigm"], r["precision"], f"{r['batch']} x {r['latent_frames']}",
               r["iterations"], f"{r['iteration_s_mean']:.3f}", f"{r['iteration_s_median']:.3f}",
               _gib(r["peak_mem_bytes"]), r["note"])
        for r in doc["rows"]
    ]
    ratio = doc["summary"].get("iteration_ratio_sf_dmd_over_tf")
    if ratio is not None:
        lines += ["", f"Iteration time ratio SF DMD / TF: {ratio:.2f}"]
    return lines


def _tests_lines(doc: dict[str, Any]) -> list[str]:
    return [f"- exit code {r['returncode']}: {r['summary']} ({r['seconds']:.0f} s)" for r in doc["rows"]]


def check_tables(meta: dict[str, Any], docs: dict[str, dict[str, Any]]) -> str:
    """Markdown of a check: its machine line, then each stage's status, table and skipped rows."""
    lines = [f"GPU check: {meta['device_name']}, torch {meta['torch']}, command `{meta['command']}`"]
    render = {"tests": _tests_lines, "streaming": _stream_table, "train": _train_table}
    for name, doc in docs.items():
        lines += ["", f"### {name}: {doc['status']}" + (f" ({doc['error']})" if doc["error"] else ""), ""]
        lines += render[name](doc) if doc["rows"] else ["(no rows)"]
        lines += [f"- skipped: {s}" for s in doc["skipped"]]
    return "\n".join(lines)
