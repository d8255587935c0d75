"""A tiny, randomly initialised SD2-style inpainting pipeline, built in code.

CI has no GPU and no model hub, yet the ``sd2`` backend must be exercised end to end through the
very code path a real Stable Diffusion 2 inpainting directory takes. This writes a pipeline with
the same component layout (9-input-channel UNet, AutoencoderKL, CLIP text encoder and BPE
tokenizer, scheduler) to a directory with ``save_pretrained``; ``Sd2Inpainter`` then loads it
with ``from_pretrained`` exactly as it would load the real one. Its output is noise-like: it
tests plumbing (shapes, value mapping, pasting, fallbacks), not quality.
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

TOKENIZER_MAX_LENGTH = 77  # as CLIP; prompts are tokenized per character here


def _write_tokenizer_files(directory: Path) -> tuple[Path, Path]:
    """A minimal CLIP BPE vocabulary: letters, digits and a few merges, plus the specials."""
    directory.mkdir(parents=True, exist_ok=True)
    symbols = list(string.ascii_lowercase + string.digits + ".,!?'-")
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>"] + symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(token, len(vocab))
    merges = ["a n", "i m", "a g", "a n</w>", "im ag", "imag e</w>"]
    for merge in merges:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    vocab_file = directory / "vocab.json"
    merges_file = directory / "merges.txt"
    vocab_file.write_text(json.dumps(vocab))
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return vocab_file, merges_file


def build_tiny_sd2(directory: str | Path, seed: int = 0) -> Path:
    """Create the pipeline under ``directory`` (returned); a few MB, seconds on a CPU."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    directory = Path(directory)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=9,  # 4 latent + 1 mask + 4 masked-image latent: the SD inpainting layout
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=16,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=128,
        max_position_embeddings=TOKENIZER_MAX_LENGTH,
    ))
    with tempfile.TemporaryDirectory() as src:
        vocab_file, merges_file = _write_tokenizer_files(Path(src))
        tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=TOKENIZER_MAX_LENGTH)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)
    return directory


if __name__ == "__main__":  # python -m tests.pixels.tiny_sd2 DIR
    import sys

    print(build_tiny_sd2(sys.argv[1] if len(sys.argv) > 1 else "tiny-sd2"))
