"""Causal Forcing's D_Bi protocol (REFERENCE §3, stage 1): the AR teacher learns the bidirectional
teacher's distribution, not the ground truth's, so that stage 2's causal ODE and stage 3's real score
describe one distribution, and the init comparison differs in the teacher only.

D_Bi = samples of the bidirectional teacher. They are the endpoints of its ODE pairs
(`forcing.ode_pairs`: 48-step shift-5 CFG Euler runs from seeded noise), made through the artifact
store under the key and kind an `ODEInit` run with the same teacher, pair count and CFG uses, so the
comparison's bidirectional arm (`causal_init_bi`) regresses the very trajectories whose endpoints
are D_Bi (same prompts, same guidance).

1. `TeacherForcingDBi`: Teacher Forcing on D_Bi (clip = a pair's endpoint, prompt = its prompt),
   initialised from the bidirectional teacher (the paper starts every stage from Wan).
2. `CausalODEDBi`: causal ODE from that AR teacher, with D_Bi's clip of each pair seed as the clean
   context (the AR teacher's "ground truth").
3. Stage 3 is Self Forcing DMD from `causal_ode_dbi` (experiment `causal_ode_dmd`, configs only).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from forcing.errors import ConfigError
from forcing.models import CausalWanModel
from lightning_modules.causal_forcing import CausalODE, causal_pair_kwargs
from lightning_modules.ode_init import ODEInit, pair_count
from lightning_modules.teacher_forcing import TeacherForcing


def dbi_pairs(cfg: DictConfig, num: int, guidance_scale: float) -> Path:
    """The folder of D_Bi: `num` ODE pairs of the bidirectional teacher `cfg.teacher` (CFG
    `guidance_scale`), found or made in the artifact store exactly as `ODEInit` keys its pairs."""
    from forcing.ode_pairs import make_shapes_pairs
    from lightning_modules.artifacts import ensure, prerequisite_config, resolve_path, store_dir

    w = cfg.world
    if w.name != "shapes":
        raise ConfigError("D_Bi at scale: pass paradigm.pairs_path=<ODE pairs of the bidirectional teacher>")
    teacher = resolve_path(cfg, cfg.teacher, "bidirectional teacher")
    num = pair_count(cfg, num)  # as ODEInit: a debugging run makes just enough pairs
    key = cfg
    if cfg.teacher.get("experiment") and not cfg.teacher.get("path"):
        key = prerequisite_config(cfg, str(cfg.teacher.experiment))  # the teacher's identity
    settings = OmegaConf.create({"paradigm": {"pair_guidance_scale": float(guidance_scale)},
                                 "world": {"num_frames": int(w.num_frames)}})  # fmt: skip
    folder = store_dir(key, ODEInit.pairs_kind(settings, num))

    def make(out: Path) -> None:
        make_shapes_pairs(teacher, out, num, world=OmegaConf.to_container(w, resolve=True),
                          guidance_scale=float(guidance_scale), num_frames=int(w.num_frames),
                          height=int(w.height), width=int(w.width), max_shapes=int(w.max_shapes), base_seed=0)  # fmt: skip

    return ensure(folder, make, "D_Bi (bidirectional-teacher ODE pairs)")


class TeacherForcingDBi(TeacherForcing):
    """Causal Forcing stage 1 on D_Bi: Teacher Forcing on the bidirectional teacher's samples."""

    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """TF's checks, a bidirectional teacher (the data source and init), pixel-space pairs."""
        super().validate_config(cfg)
        if not (cfg.teacher.get("path") or cfg.teacher.get("experiment")):
            raise ConfigError("D_Bi needs the bidirectional teacher whose samples it trains on: set teacher=...")
        if cfg.world.codec.kind != "identity":
            raise ConfigError("D_Bi Teacher Forcing reads its clips from ODE pairs of an identity codec (shapes world)")

    @classmethod
    def data_folder(cls, cfg: DictConfig) -> Path:
        """D_Bi of this run: `paradigm.pairs_path`, else the artifact store's."""
        p = cfg.paradigm
        if p.get("pairs_path"):
            return Path(p.pairs_path)
        return dbi_pairs(cfg, int(p.num_pairs), float(p.pair_guidance_scale))

    @classmethod
    def prepare_prerequisites(cls, cfg: DictConfig) -> None:
        """The bidirectional teacher (the init) and D_Bi (its samples)."""
        from lightning_modules.artifacts import resolve_path

        teacher = resolve_path(cfg, cfg.teacher, "bidirectional teacher")
        folder = cls.data_folder(cfg)
        with open_dict(cfg):
            cfg.paradigm.init_from = cfg.paradigm.get("init_from") or str(teacher)
            cfg.paradigm.pairs_path = str(folder)

    #: trains on D_Bi (ODE pairs), not on the world's data module
    uses_world_data: ClassVar[bool] = False

    @classmethod
    def build_datamodule(cls, cfg: DictConfig) -> L.LightningDataModule:
        """D_Bi as clips: the pairs' endpoints are the batches' "video" (identity codec)."""
        return ODEInit.build_datamodule(cfg)

    def build_networks(self) -> None:
        """The AR teacher starts from the bidirectional teacher's weights (same architecture)."""
        init_from = self.p.get("init_from")
        if not init_from:  # unit tests without artifacts
            super().build_networks()
            return
        overrides = OmegaConf.to_container(self.cfg.model.overrides, resolve=True)
        self.generator = CausalWanModel.from_pretrained(str(init_from), preset=self.cfg.model.preset, **overrides)


class CausalODEDBi(CausalODE):
    """Causal ODE from the D_Bi AR teacher, with D_Bi's clips as the clean context."""

    @classmethod
    def pairs_kind(cls, cfg: DictConfig, num: int) -> str:
        """The causal pairs' kind, marked as conditioned on D_Bi."""
        return f"{super().pairs_kind(cfg, num)}-dbi"

    @classmethod
    def context_folder(cls, cfg: DictConfig) -> Path:
        """D_Bi of the AR teacher: `paradigm.context_pairs_path`, else its experiment's D_Bi."""
        from lightning_modules.artifacts import prerequisite_config

        path = cfg.paradigm.get("context_pairs_path")
        if path:
            return Path(path)
        if cfg.teacher.get("path") or not cfg.teacher.get("experiment"):
            raise ConfigError("an AR teacher given by path needs paradigm.context_pairs_path (the D_Bi it learnt)")
        return TeacherForcingDBi.data_folder(prerequisite_config(cfg, str(cfg.teacher.experiment)))

    @classmethod
    def make_pairs(cls, cfg: DictConfig, teacher: Path, out: Path, num: int) -> None:
        """The AR teacher's ODE with the D_Bi clip of each pair seed as the clean context."""
        from forcing.ode_pairs import make_shapes_pairs, read_shards, shapes_clips

        dbi = read_shards(cls.context_folder(cfg))
        _, seeds = shapes_clips(num, 0, int(cfg.world.max_shapes))
        rows = {int(s): i for i, s in enumerate(dbi["seeds"].tolist())}
        missing = [s for s in seeds if s not in rows]
        if missing:
            raise ConfigError(f"D_Bi holds no sample of {len(missing)} of the {num} pair seeds: make it with as many pairs")
        p = cfg.paradigm
        make_shapes_pairs(
            teacher, out, num, world=OmegaConf.to_container(cfg.world, resolve=True),
            guidance_scale=float(p.pair_guidance_scale), forward_kwargs=causal_pair_kwargs(int(p.frames_per_block)),
            context=dbi["target"][[rows[s] for s in seeds]],
        )  # fmt: skip
