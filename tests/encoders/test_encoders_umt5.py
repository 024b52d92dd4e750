"""UMT5 text encoder on a tiny random UMT5 config with a tiny word-level tokenizer."""

import pytest
import torch

pytest.importorskip("transformers")
from transformers import UMT5EncoderModel  # noqa: E402

from forcing.encoders import MissingPretrainedError, UMT5TextEncoder, build_text_encoder  # noqa: E402
from forcing.errors import ConfigError  # noqa: E402
from tests.suite.wan_folders import WORDS, save_tiny_umt5, tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tiny_umt5(tmp_path_factory):
    """A diffusers-style folder: text_encoder/ (tiny random UMT5) and tokenizer/."""
    return save_tiny_umt5(tmp_path_factory.mktemp("wan"))


def test_umt5_encodes_like_wan(tiny_umt5):
    encoder = UMT5TextEncoder.from_pretrained(tiny_umt5, max_length=12)
    assert (encoder.dim, encoder.max_length) == (16, 12)
    prompts = ["a red circle on a black background", "blue   square", ""]
    out = encoder(prompts)
    assert out.shape == (3, 12, 16)
    lengths = [8, 3, 1]  # words + </s>
    for b, n in enumerate(lengths):
        assert (out[b, :n].abs().sum(-1) > 0).all()
        assert torch.equal(out[b, n:], torch.zeros(12 - n, 16))
    # reference: the model on the unpadded prompt alone (Wan's per-prompt slice + zero pad)
    model = encoder.model
    ids = torch.tensor([[WORDS.index(w) for w in "blue square".split()] + [1]])
    reference = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
    assert torch.allclose(out[1, :3], reference, atol=1e-5)


def test_umt5_is_frozen_and_stays_in_eval(tiny_umt5):
    encoder = build_text_encoder(kind="umt5", path=str(tiny_umt5), max_length=8)
    assert all(not p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.model.training
    first, second = encoder(["a red circle"]), encoder(["a red circle"])
    assert torch.equal(first, second)  # no dropout
    assert not first.requires_grad


def test_umt5_flat_folder_and_dtype(tiny_umt5, tmp_path):
    UMT5EncoderModel.from_pretrained(tiny_umt5 / "text_encoder").save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    encoder = UMT5TextEncoder.from_pretrained(tmp_path, max_length=6, dtype="bfloat16")
    assert encoder(["a red circle"]).dtype == torch.bfloat16


def test_umt5_missing_folder_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere.*UMT5EncoderModel"):
        UMT5TextEncoder.from_pretrained(missing)
    with pytest.raises(FileNotFoundError, match="config.json"):
        UMT5TextEncoder.from_pretrained(tmp_path)
    with pytest.raises(ConfigError):  # reported as one line by run.py
        build_text_encoder(kind="umt5", path=str(missing))
    assert issubclass(MissingPretrainedError, FileNotFoundError)
