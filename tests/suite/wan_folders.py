"""Tiny random Wan2.1 components saved in the real formats (nothing downloaded): a UMT5 text encoder
with its tokenizer, a Wan VAE and a transformer, alone or as the diffusers Wan2.1 layout of WAN_ROOT."""

from __future__ import annotations

from pathlib import Path

import torch

#: the tiny tokenizer's vocabulary (pad id 0, eos id 1, as UMT5's)
WORDS = ["<pad>", "</s>", "<unk>", "a", "red", "blue", "circle", "square", "on", "black", "background"]
#: the tiny VAE's latent normalisation (z_dim 4)
VAE_MEAN = [0.5, -0.25, 1.0, 0.0]
VAE_STD = [2.0, 0.5, 1.5, 3.0]
#: `world=wan` at the tiny parts' sizes: 4 latent channels, UMT5 width 16, 16x16 pixels = one 2x2 patch per
#: latent frame, 8 tokens a prompt, no loader workers (add a `hardware=` option)
TINY_WAN = ("model=tiny", "model.overrides.in_dim=4", "model.overrides.out_dim=4", "model.overrides.text_dim=16",
            "model.overrides.patch_size=[1,2,2]", "world.height=16", "world.width=16",
            "world.text_encoder.max_length=8", "world.num_workers=0")  # fmt: skip


def tiny_tokenizer():  # noqa: ANN201 - transformers is imported lazily
    """Word-level `PreTrainedTokenizerFast` that appends </s>, like UMT5's (pad id 0, eos id 1)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def save_tiny_umt5(root: Path) -> Path:
    """`root/text_encoder/` (a tiny random UMT5EncoderModel, d_model 16) and `root/tokenizer/`."""
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    config = UMT5Config(
        vocab_size=len(WORDS), d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16,
    )  # fmt: skip
    UMT5EncoderModel(config).save_pretrained(root / "text_encoder")
    tiny_tokenizer().save_pretrained(root / "tokenizer")
    return root


def save_tiny_vae(root: Path) -> Path:
    """`root/vae/`: a tiny random diffusers AutoencoderKLWan (z_dim 4, `VAE_MEAN` / `VAE_STD`)."""
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1, latents_mean=VAE_MEAN, latents_std=VAE_STD
    )
    vae.save_pretrained(root / "vae")
    return root


def save_tiny_wan_root(root: Path, seed: int = 0) -> Path:
    """A diffusers Wan2.1 folder: text_encoder/, tokenizer/, vae/ and transformer/ (the tiny backbone
    of `model=tiny`, seed `seed`, diffusers layout)."""
    from tests.suite.helpers import tiny_teacher

    save_tiny_umt5(root)
    save_tiny_vae(root)
    tiny_teacher(root / "transformer", seed=seed, layout="diffusers")
    return root


def save_tiny_wan_teacher(folder: Path, seed: int = 0, layout: str = "wan") -> Path:
    """The `tiny` preset as it fits the tiny VAE and UMT5 (4 latent channels, text width 16, 2x2 patches),
    every weight perturbed so that its ODE moves, saved as a weights folder in the original Wan or the
    diffusers `layout`."""
    from forcing.models import CausalWanModel
    from forcing.models.weights import save_pretrained

    torch.manual_seed(seed)
    model = CausalWanModel.from_preset("tiny")
    with torch.no_grad():
        for weight in model.parameters():
            weight.add_(0.05 * torch.randn_like(weight))
    return save_pretrained(model, folder, layout=layout)  # type: ignore[arg-type]


def save_tiny_videos(folder: Path, captions: list[str], num_frames: int, size: int = 16, seed: int = 0) -> Path:
    """One random clip per caption in `folder`: `clip<i>.pt` ([3, F, size, size] in [-1, 1]) and its
    sidecar caption `clip<i>.txt`."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    for i, caption in enumerate(captions):
        torch.save(torch.rand(3, num_frames, size, size, generator=generator) * 2 - 1, folder / f"clip{i}.pt")
        (folder / f"clip{i}.txt").write_text(caption + "\n")
    return folder
