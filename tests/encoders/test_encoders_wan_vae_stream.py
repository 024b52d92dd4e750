"""Block-by-block Wan VAE decoding carries the causal cache: the blocks make the whole video's decode."""

import pytest
import torch

pytest.importorskip("diffusers")

from forcing.bench.vae import random_wan_vae  # noqa: E402
from forcing.encoders.wan_vae_stream import WanStreamDecoder  # noqa: E402


@pytest.mark.parametrize("block", [1, 3])
def test_stream_decode_equals_whole_decode(block: int) -> None:
    codec = random_wan_vae(torch.device("cpu"), torch.float32, z_dim=3, tiny=True)
    latents = torch.randn(1, 3, 7, 4, 6)
    whole = codec.decode(latents)
    decoder = WanStreamDecoder(codec)
    for _ in range(2):  # reset() starts a new video: the second pass is the same
        parts = [decoder(latents[:, :, s : s + block]) for s in range(0, 7, block)]
        assert [p.shape[2] for p in parts][:2] == [1 + 4 * (block - 1), 4 * block]
        assert torch.allclose(torch.cat(parts, dim=2), whole, atol=1e-5)
        decoder.reset()
