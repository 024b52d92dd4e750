"""Captions of the clips of a video folder: sidecar text files, or one captions file.

- `sidecar` (default): `<clip>.txt` beside each clip (`a/b.mp4` -> `a/b.txt`, frames folder `a/c/` -> `a/c.txt`);
- a `.json` file: {key: caption};
- any other file: one `key<TAB>caption` per line.
A key is the clip's path relative to the folder (`a/b.mp4`), its file name (`b.mp4`) or its stem (`b`).
"""

from __future__ import annotations

import json
from pathlib import Path

from forcing.errors import ConfigError

SIDECAR = "sidecar"


def _read_table(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise ConfigError(f"captions file {path} does not exist (.json {{clip: caption}} or clip<TAB>caption lines)")
    if path.suffix.lower() == ".json":
        return {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    table: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        key, sep, caption = line.partition("\t")
        if not sep:
            raise ConfigError(f"{path}:{n} is not `clip<TAB>caption`")
        table[key.strip()] = caption.strip()
    return table


def load_captions(source: str | Path | None, clips: list[Path], root: str | Path) -> list[str]:
    """The caption of every clip (`source`: "sidecar"/None or a captions file); `ConfigError` naming
    the first clip without one."""
    root = Path(root)
    if source is None or str(source) == SIDECAR:
        captions = []
        for clip in clips:
            sidecar = clip.with_name(clip.stem + ".txt") if clip.is_file() else clip.with_name(clip.name + ".txt")
            if not sidecar.is_file():
                raise ConfigError(f"clip {clip} has no caption: expected the sidecar file {sidecar}")
            captions.append(" ".join(sidecar.read_text(encoding="utf-8").split()))
        return captions
    table = _read_table(Path(source))
    captions = []
    for clip in clips:
        keys = (clip.relative_to(root).as_posix(), clip.name, clip.stem)
        found = next((table[k] for k in keys if k in table), None)
        if found is None:
            raise ConfigError(f"clip {clip.relative_to(root).as_posix()} has no caption in {source}")
        captions.append(found)
    return captions
