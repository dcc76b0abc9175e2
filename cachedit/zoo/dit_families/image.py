"""Image families on their offline replicas: SD3, Qwen-Image, FLUX.2, Sana, ..., each a `ZooEntry` in `ENTRIES`."""

from __future__ import annotations

import diffusers
import torch

from ..model_config import ModelConfig
from ..calls import call_kwargs
from ..replicas import tiny_vae
from ..zoo_entry import ZooEntry
from .parts import (
    PROMPT_CHARS, TOKENS, char_tokenizer, config_of, emb, flow, flux2_vae, flux_vae, flux_vae16, mask, masked_embeds,
    nones, pooled_embeds, prompt_only, seeded_image, text_embeds, two_encoder_embeds, vae4, vae4_shifted, vae16, wan_vae,
)


def _sd3_transformer(**o):
    return diffusers.SD3Transformer2DModel(**{**dict(
        sample_size=32, patch_size=2, in_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, caption_projection_dim=32, pooled_projection_dim=32, out_channels=4,
        pos_embed_max_size=32), **o})


def _qwen_transformer(**o):
    return diffusers.QwenImageTransformer2DModel(**{**dict(
        patch_size=2, in_channels=64, out_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=(4, 6, 6)), **o})


def _qwen_vae():
    return diffusers.AutoencoderKLQwenImage(
        base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True])


def _qwen_embeds(pipe, prompt, negative):
    d = config_of(pipe).joint_attention_dim
    return dict(
        prompt_embeds=emb(prompt, 1, TOKENS, d), prompt_embeds_mask=mask(),
        negative_prompt_embeds=emb(negative, 1, TOKENS, d), negative_prompt_embeds_mask=mask(),
    )


def _flux2_transformer(**o):
    return diffusers.Flux2Transformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, timestep_guidance_channels=32, axes_dims_rope=(4, 4, 4, 4)), **o})


def _flux2_embeds(pipe, prompt, negative):
    return dict(prompt_embeds=emb(prompt, 1, TOKENS, config_of(pipe).joint_attention_dim))


def _sana_transformer(**o):
    return diffusers.SanaTransformer2DModel(**{**dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=10,
        num_cross_attention_heads=2, cross_attention_head_dim=16, cross_attention_dim=32, caption_channels=32,
        sample_size=8, patch_size=1), **o})


def _sana_vae():
    return diffusers.AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2,
        encoder_block_types=("ResBlock", "ResBlock", "ResBlock", "ResBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "ResBlock", "ResBlock"),
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        encoder_layers_per_block=(1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1),
        encoder_qkv_multiscales=((), (), (), ()), decoder_qkv_multiscales=((), (), (), ()),
        decoder_norm_types="batch_norm", scaling_factor=0.41407)


def _hunyuandit_transformer(**o):
    return diffusers.HunyuanDiT2DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, patch_size=2, sample_size=8, hidden_size=32,
        num_layers=10, mlp_ratio=2.0, cross_attention_dim=32, cross_attention_dim_t5=32, pooled_projection_dim=16,
        text_len=TOKENS, text_len_t5=TOKENS), **o})


def _cogview3_transformer(**o):
    return diffusers.CogView3PlusTransformer2DModel(**{**dict(
        patch_size=2, in_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2, out_channels=4,
        text_embed_dim=32, time_embed_dim=16, condition_dim=8, pos_embed_max_size=16, sample_size=8), **o})


def _cogview4_transformer(**o):
    return diffusers.CogView4Transformer2DModel(**{**dict(
        patch_size=2, in_channels=4, out_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        text_embed_dim=32, time_embed_dim=16, condition_dim=8, pos_embed_max_size=16, sample_size=8,
        rope_axes_dim=(4, 4)), **o})


def _lumina2_transformer(**o):
    return diffusers.Lumina2Transformer2DModel(**{**dict(
        sample_size=8, patch_size=2, in_channels=4, hidden_size=32, num_layers=10, num_refiner_layers=1,
        num_attention_heads=2, num_kv_heads=2, multiple_of=16, axes_dim_rope=(4, 4, 8), axes_lens=(32, 32, 32),
        cap_feat_dim=32), **o})


def _auraflow_transformer(**o):
    return diffusers.AuraFlowTransformer2DModel(**{**dict(
        sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=10,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=32,
        out_channels=4, pos_embed_max_size=64), **o})


def _chroma_transformer(**o):
    return diffusers.ChromaTransformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=(4, 6, 6), approximator_num_channels=8, approximator_hidden_dim=32,
        approximator_layers=1), **o})


def _hidream_transformer(**o):
    return diffusers.HiDreamImageTransformer2DModel(**{**dict(
        # Two double-stream blocks, so the cached middle (F1) starts inside that list; one Llama layer per block.
        patch_size=2, in_channels=4, out_channels=4, num_layers=2, num_single_layers=8, attention_head_dim=8,
        num_attention_heads=4, caption_channels=[32, 16], text_emb_dim=32, num_routed_experts=2,
        num_activated_experts=1, axes_dims_rope=(4, 2, 2), max_resolution=(32, 32), llama_layers=tuple(range(10))),
        **o})


def _hidream_embeds(pipe, prompt, negative):
    c = config_of(pipe)
    llama_layers = len(c.llama_layers)
    t5, llama = c.caption_channels[0], c.caption_channels[1]
    return dict(
        prompt_embeds_t5=emb("t5:" + prompt, 1, TOKENS, t5),
        negative_prompt_embeds_t5=emb("t5:" + negative, 1, TOKENS, t5),
        prompt_embeds_llama3=emb("llama:" + prompt, llama_layers, 1, TOKENS, llama),
        negative_prompt_embeds_llama3=emb("llama:" + negative, llama_layers, 1, TOKENS, llama),
        pooled_prompt_embeds=emb("pooled:" + prompt, 1, c.text_emb_dim),
        negative_pooled_prompt_embeds=emb("pooled:" + negative, 1, c.text_emb_dim),
    )


def _zimage_transformer(**o):
    return diffusers.ZImageTransformer2DModel(**{**dict(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=10, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, cap_feat_dim=32, axes_dims=[4, 6, 6], axes_lens=[64, 32, 32]), **o})


def _zimage_embeds(pipe, prompt, negative):
    d = config_of(pipe).cap_feat_dim
    return dict(prompt_embeds=[emb(prompt, TOKENS, d)], negative_prompt_embeds=[emb(negative, TOKENS, d)])


def _bria_transformer(**o):
    return diffusers.BriaTransformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=8, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=[4, 6, 6]), **o})


def _dit_transformer(**o):
    return diffusers.DiTTransformer2DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=10, norm_num_groups=32,
        sample_size=8, patch_size=2), **o})


def _dit_inputs(pipe, model: ModelConfig) -> dict:
    """Class-conditional ImageNet DiT: class labels instead of prompts, and no size argument (the latent size is the
    transformer's), on the hub checkpoint as on the replica."""
    kwargs = call_kwargs(model)
    kwargs.pop("height", None), kwargs.pop("width", None)
    labels = model.class_labels if model.class_labels is not None else [1]
    return {**kwargs, "class_labels": [label for label in labels for _ in range(model.num_images)]}


def _pixart_sigma_transformer(**o):
    return diffusers.PixArtTransformer2DModel(**{**dict(
        sample_size=8, num_layers=10, patch_size=2, attention_head_dim=16, num_attention_heads=2, caption_channels=32,
        in_channels=4, out_channels=8, cross_attention_dim=32, num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, use_additional_conditions=False), **o})


def _kandinsky5_transformer(**o):
    return diffusers.Kandinsky5Transformer3DModel(**{**dict(
        in_visual_dim=16, in_text_dim=32, in_text_dim2=16, time_dim=16, out_visual_dim=16, patch_size=(1, 2, 2),
        model_dim=32, ff_dim=64, num_text_blocks=1, num_visual_blocks=10, axes_dims=(4, 6, 6)), **o})


def _kandinsky5_embeds(pipe, prompt, negative):
    c = config_of(pipe)
    return dict(
        prompt_embeds_qwen=emb(prompt, 1, TOKENS, c.in_text_dim),
        prompt_embeds_clip=emb("clip:" + prompt, 1, c.in_text_dim2),
        negative_prompt_embeds_qwen=emb(negative, 1, TOKENS, c.in_text_dim),
        negative_prompt_embeds_clip=emb("clip:" + negative, 1, c.in_text_dim2),
        prompt_cu_seqlens=torch.tensor([0, TOKENS], dtype=torch.int32),
        negative_prompt_cu_seqlens=torch.tensor([0, TOKENS], dtype=torch.int32),
    )


def _flux_kontext_transformer(**o):
    from ..replicas import flux_transformer

    return flux_transformer(**{"num_layers": 2, "num_single_layers": 8, "attention_head_dim": 16,
                               "num_attention_heads": 2, "axes_dims_rope": (4, 6, 6), **o})


def _flux_embeds(pipe, prompt, negative):
    c = config_of(pipe)
    return dict(prompt_embeds=emb(prompt, 1, TOKENS, c.joint_attention_dim),
                pooled_prompt_embeds=emb("pooled:" + prompt, 1, c.pooled_projection_dim))


def _hunyuan_image_transformer(**o):
    return diffusers.HunyuanImageTransformer2DModel(**{**dict(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        num_single_layers=8, num_refiner_layers=1, text_embed_dim=32, text_embed_2_dim=16, rope_axes_dim=(8, 8)),
        **o})


def _hunyuan_image_vae():
    return diffusers.AutoencoderKLHunyuanImage(
        in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(32, 32, 32, 32), layers_per_block=1,
        spatial_compression_ratio=8, sample_size=64, scaling_factor=0.75289)


def _hunyuan_image_embeds(pipe, prompt, negative):
    # Qwen2.5-VL prompt embeddings plus ByT5 glyph embeddings; no guider: the distilled checkpoints' single pass.
    c = config_of(pipe)
    return dict(
        prompt_embeds=emb(prompt, 1, TOKENS, c.text_embed_dim), prompt_embeds_mask=mask(),
        prompt_embeds_2=emb("byt5:" + prompt, 1, TOKENS, c.text_embed_2_dim), prompt_embeds_mask_2=mask(),
    )


def _visualcloze_transformer(**o):
    # FLUX.1 Fill layout: packed latents, packed masked-image latents and the packed 8x8 pixel mask, concatenated.
    return _flux_kontext_transformer(**{"in_channels": 16 + 16 + 256, "out_channels": 16, "guidance_embeds": True,
                                        "joint_attention_dim": 32, "pooled_projection_dim": 32,
                                        **o})


def _visualcloze_components():
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=97, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
        projection_dim=32, max_position_embeddings=PROMPT_CHARS, eos_token_id=2)).eval()
    t5 = T5EncoderModel(T5Config(vocab_size=97, d_model=32, d_ff=37, d_kv=16, num_layers=1, num_heads=2)).eval()
    return dict(scheduler=flow(), vae=flux_vae(), text_encoder=clip, tokenizer=char_tokenizer(PROMPT_CHARS),
                text_encoder_2=t5, tokenizer_2=char_tokenizer(PROMPT_CHARS), resolution=32)


def _visualcloze_embeds(pipe, prompt, negative):
    # check_inputs refuses prompt embeddings without a task prompt and a task prompt with them: the replica encodes
    # its prompts with tiny random CLIP and T5 encoders instead. One in-context example row, then the query row.
    image = seeded_image(32)
    return dict(task_prompt="in each row turn a into b", content_prompt=prompt,
                image=[[image, image], [image, None]], max_sequence_length=PROMPT_CHARS)


def _longcat_image_transformer(**o):
    return diffusers.LongCatImageTransformer2DModel(**{**dict(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=8, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 6, 6]), **o})


def _ovis_image_transformer(**o):
    return diffusers.OvisImageTransformer2DModel(**{**dict(
        patch_size=1, in_channels=64, out_channels=64, num_layers=2, num_single_layers=8, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 6, 6)), **o})


def _longcat_image_components():
    # Its call refuses a prompt beside prompt embeddings and cannot encode without one (diffusers 0.42: len(None)), so
    # the replica encodes its prompts with a tiny random Qwen2 (the checkpoint's Qwen2.5-VL is a Qwen2 text model).
    from transformers import Qwen2Config, Qwen2ForCausalLM

    text_encoder = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=97, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256)).eval()
    return dict(scheduler=flow(), vae=vae16(), text_encoder=text_encoder,
                tokenizer=char_tokenizer(PROMPT_CHARS), text_processor=None)


def _longcat_image_embeds(pipe, prompt, negative):
    # The prompt rewrite generates with the vision-language model: off on the replica.
    return dict(prompt=prompt, negative_prompt=negative, enable_prompt_rewrite=False)


def _prx_transformer(**o):
    return diffusers.PRXTransformer2DModel(**{**dict(
        in_channels=16, patch_size=2, context_in_dim=32, hidden_size=32, mlp_ratio=2.0, num_heads=2, depth=10,
        axes_dim=[8, 8]), **o})


def _bria_fibo_transformer(**o):
    # Prompt embeddings: the text encoder's last two hidden states concatenated (2 x text_encoder_dim).
    return diffusers.BriaFiboTransformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=8, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, text_encoder_dim=16, axes_dims_rope=[4, 6, 6]), **o})


def _bria_fibo_vae():
    # The Wan 2.2 VAE layout (patchified, residual, 16x spatial compression): the pipeline fixes vae_scale_factor=16.
    return diffusers.AutoencoderKLWan(
        base_dim=8, decoder_base_dim=8, z_dim=16, in_channels=12, out_channels=12, patch_size=2, is_residual=True,
        dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True], scale_factor_spatial=16,
        latents_mean=[0.0] * 16, latents_std=[1.0] * 16)


def _bria_fibo_components():
    # The call takes no prompt embeddings (it feeds every hidden state of the encoder to the blocks): a tiny random
    # SmolLM3. Its vocabulary covers the pipeline's hard-coded begin-of-text id (128000) used for empty prompts.
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    text_encoder = SmolLM3ForCausalLM(SmolLM3Config(
        vocab_size=128256, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2)).eval()
    return dict(scheduler=flow(), vae=_bria_fibo_vae(), text_encoder=text_encoder,
                tokenizer=char_tokenizer(PROMPT_CHARS))


GLM_IMAGE_SIZE = 64  # the prior tokens fix the image size: the replica always runs at 64 px


def _glm_image_transformer(**o):
    return diffusers.GlmImageTransformer2DModel(**{**dict(
        patch_size=2, in_channels=16, out_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        text_embed_dim=32, time_embed_dim=16, condition_dim=8, prior_vq_quantizer_codebook_size=64), **o})


def _glm_image_embeds(pipe, prompt, negative):
    # GLM-Image's autoregressive vision-language model writes the prior image tokens that condition the DiT; the
    # replica passes seeded random ones (one per latent patch) with ByT5-like glyph embeddings.
    c = config_of(pipe)
    tokens = (GLM_IMAGE_SIZE // pipe.vae_scale_factor // c.patch_size) ** 2
    generator = torch.Generator().manual_seed(len(prompt))
    return dict(
        prompt_embeds=emb(prompt, 1, TOKENS, c.text_embed_dim),
        negative_prompt_embeds=emb(negative, 1, TOKENS, c.text_embed_dim),
        prior_token_ids=torch.randint(0, c.prior_vq_quantizer_codebook_size, (1, tokens), generator=generator),
    )


def _cosmos_transformer(**o):
    # Cosmos-Predict2 layout (no learnable position embedding). The padding-mask channel is off: concatenating it
    # resizes the mask with torchvision, which has no CPU build here (the pipeline's mask is all zeros anyway).
    return diffusers.CosmosTransformer3DModel(**{**dict(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=10, mlp_ratio=2,
        text_embed_dim=32, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(1.0, 4.0, 4.0),
        concat_padding_mask=False, extra_pos_embed_type=None), **o})


class _PassThroughSafetyChecker(diffusers.ModelMixin, diffusers.ConfigMixin):
    """Replica-only stand-in for the Cosmos Guardrail content filter (`cosmos_guardrail.CosmosSafetyChecker`, which
    needs torchvision and hub models): the Cosmos pipelines refuse to run without a safety checker. It passes every
    prompt and frame through unchanged; it is no part of the DiT and filters nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_device_tracker", torch.zeros(1), persistent=False)  # so `.to()` / `.device` work

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames):
        return frames


def _cosmos_components():
    # The checkpoint's scheduler config carries the EDM constants the pipeline reads (sigma_data when decoding).
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True)
    scheduler.register_to_config(sigma_max=80.0, sigma_min=0.002, sigma_data=1.0, final_sigmas_type="sigma_min")
    return dict(scheduler=scheduler, vae=wan_vae(), safety_checker=_PassThroughSafetyChecker(),
                **nones("text_encoder", "tokenizer"))


def _flow_shifted():
    # Resolution-dependent shift: Krea 2, Qwen-Image 2.1 and Nucleus-MoE pass `mu` to the scheduler.
    return diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)


def _ernie_image_transformer(**o):
    return diffusers.ErnieImageTransformer2DModel(**{**dict(
        hidden_size=32, num_attention_heads=2, num_layers=10, ffn_hidden_size=64, in_channels=16, out_channels=16,
        text_in_dim=16, rope_axes_dim=(4, 6, 6)), **o})


def _ernie_image_embeds(pipe, prompt, negative):
    # One (tokens, text_in_dim) tensor per prompt: a hidden state of the Mistral 3 text encoder.
    d = config_of(pipe).text_in_dim
    return dict(prompt_embeds=[emb(prompt, TOKENS, d)], negative_prompt_embeds=[emb(negative, TOKENS, d)])


QWEN3_VL_SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]
QWEN3_VL_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IDEOGRAM4_TEXT_DIM = 16  # the tiny Qwen3-VL's width; the transformer reads 13 of its layers side by side
# The call's max_sequence_length, the text region of the packed sequence: a chat-formatted prompt of ~90 characters.
IDEOGRAM4_TEXT_TOKENS = 128


def _qwen3_vl_tokenizer(max_length: int):
    """The character tokenizer with Qwen's chat markers as special tokens and a ChatML chat template."""
    tokenizer = char_tokenizer(max_length)
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN3_VL_SPECIAL_TOKENS})
    tokenizer.chat_template = QWEN3_VL_CHAT_TEMPLATE
    return tokenizer


def _qwen3_vl(hidden_size: int, layers: int, vocab_size: int):
    from transformers import Qwen3VLConfig, Qwen3VLModel

    text = dict(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                max_position_embeddings=256, rope_parameters=dict(
                    rope_type="default", rope_theta=5e6, mrope_section=[2, 1, 1], mrope_interleaved=True))
    vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=hidden_size,
                  deepstack_visual_indexes=[0])
    return Qwen3VLModel(Qwen3VLConfig(text_config=text, vision_config=vision)).eval()


def _ideogram4_transformer(**o):
    return diffusers.Ideogram4Transformer2DModel(**{**dict(
        in_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2, intermediate_size=64,
        adaln_dim=16, llm_features_dim=13 * IDEOGRAM4_TEXT_DIM, mrope_section=(4, 2, 2)), **o})


def _ideogram4_components():
    # The call takes no prompt embeddings: it runs the Qwen3-VL decoder layers itself and stacks the hidden states of
    # 13 of them (up to layer 35), so the replica encodes with a tiny random Qwen3-VL of 36 text layers.
    tokenizer = _qwen3_vl_tokenizer(IDEOGRAM4_TEXT_TOKENS)
    return dict(scheduler=flow(), vae=flux2_vae(), tokenizer=tokenizer,
                text_encoder=_qwen3_vl(IDEOGRAM4_TEXT_DIM, 36, len(tokenizer)))


def _krea2_transformer(**o):
    return diffusers.Krea2Transformer2DModel(**{**dict(
        in_channels=64, num_layers=10, attention_head_dim=16, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=64, timestep_embed_dim=32, text_hidden_dim=32, num_text_layers=3,
        text_num_attention_heads=2, text_num_key_value_heads=2, text_intermediate_size=64,
        num_layerwise_text_blocks=1, num_refiner_text_blocks=1, axes_dims_rope=(4, 6, 6)), **o})


def _krea2_embeds(pipe, prompt, negative):
    # Per token, the hidden states of `num_text_layers` Qwen3-VL layers, stacked: (batch, tokens, layers, dim).
    c = config_of(pipe)
    shape = (1, TOKENS, c.num_text_layers, c.text_hidden_dim)
    return dict(prompt_embeds=emb(prompt, *shape), prompt_embeds_mask=mask(dtype=torch.bool),
                negative_prompt_embeds=emb(negative, *shape), negative_prompt_embeds_mask=mask(dtype=torch.bool))


def _qwen_image21_transformer(**o):
    return diffusers.QwenImage21Transformer2DModel(**{**dict(
        in_channels=16, out_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        context_in_dim=32, mlp_ratio=2, axes_dims_rope=(4, 6, 6)), **o})


def _qwen_image21_vae():
    # 16x spatial compression (the pipeline fixes vae_scale_factor=16); RGBA in and out, the class default.
    return diffusers.AutoencoderKLQwenImage21(
        base_dim=8, decoder_base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1, 1], num_res_blocks=1,
        temperal_downsample=[False, True, True, True], latents_mean=[0.0] * 16, latents_std=[1.0] * 16)


class _Qwen3VLTextProcessor:
    """Stand-in for `Qwen3VLProcessor`, which cannot be built here: its video processor needs torchvision (no CPU
    build here). `QwenImage21Pipeline.__init__` reads the chat template and the image-pad token id from it; with
    prompt embeddings nothing else is called."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def apply_chat_template(self, conversation, **kwargs):
        out = self.tokenizer.apply_chat_template(conversation, **kwargs)
        return [out] if kwargs.get("tokenize") and not kwargs.get("return_dict") else out  # batched, as a processor's

    def __call__(self, text=None, **kwargs):
        return self.tokenizer(text, **kwargs)


def _qwen_image21_embeds(pipe, prompt, negative):
    # Sampled without guidance (true_cfg_scale 1), as the checkpoint is meant to be: no negative embeddings.
    return dict(prompt_embeds=emb(prompt, 1, TOKENS, config_of(pipe).context_in_dim), prompt_embeds_mask=mask())


def _nucleus_moe_image_transformer(**o):
    # Layers 3-8 are MoE (the checkpoint's "first three and last dense"); mlp_ratio 6 gives the dense MLPs 128 units.
    transformer = diffusers.NucleusMoEImageTransformer2DModel(**{**dict(
        patch_size=2, in_channels=64, out_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        num_key_value_heads=1, joint_attention_dim=32, axes_dims_rope=(4, 6, 6), mlp_ratio=6.0, num_experts=4,
        moe_intermediate_dim=32, capacity_factors=2.0), **o})
    # SwiGLUExperts allocates its packed expert weights with torch.empty and leaves them to the checkpoint, so
    # uninitialised memory (NaN at times) would reach the replica: seeded random values instead.
    with torch.no_grad():
        for block in transformer.transformer_blocks:
            experts = getattr(block.img_mlp, "experts", None)
            if experts is not None:
                experts.gate_up_proj.normal_(std=experts.hidden_size ** -0.5)
                experts.down_proj.normal_(std=experts.moe_intermediate_dim ** -0.5)
    return transformer


def _joy_image_edit_transformer(**o):
    return diffusers.JoyImageEditTransformer3DModel(**{**dict(
        patch_size=[1, 2, 2], in_channels=16, hidden_size=32, num_attention_heads=2, text_dim=32, mlp_width_ratio=2.0,
        num_layers=10, rope_dim_list=[4, 6, 6]), **o})


def _joy_image_processor():
    """JoyImage's image processor snaps every size to its 1024-px buckets (512x1792 at the smallest), far too large
    for a CPU replica; this one keeps the same aspect-ratio snapping over those buckets scaled down 16x (64 px)."""
    from diffusers.pipelines.joyimage.image_processor import JoyImageEditImageProcessor

    class SmallBuckets(JoyImageEditImageProcessor):
        def get_default_height_width(self, image, height=None, width=None):
            bucket_h, bucket_w = super().get_default_height_width(image, height, width)
            return 16 * round(bucket_h / 256), 16 * round(bucket_w / 256)

    return SmallBuckets(vae_scale_factor=8)


def _joy_image_edit_embeds(pipe, prompt, negative):
    # Qwen3-VL's last hidden states with their masks (the Edit pipeline takes embeddings; it does not read the masks).
    d = config_of(pipe).text_dim
    return dict(prompt_embeds=emb(prompt, 1, TOKENS, d), prompt_embeds_mask=mask(),
                negative_prompt_embeds=emb(negative, 1, TOKENS, d), negative_prompt_embeds_mask=mask())


def _bria_fibo2_transformer(**o):
    # Gist tokens (the Perceiver's summary of the prompt) sized for 8-token prompts; RoPE axis 0 holds the gist
    # positions, then the image plane after them. Two injection blocks read their own text bundles.
    return diffusers.BriaFibo2Transformer2DModel(**{**dict(
        in_channels=4, patch_size=2, dim=32, n_layers=10, n_refiner_layers=1, n_heads=2, cap_feat_dim=32,
        injection_layer_ids=(3, 6), perceiver_num_layers=1, min_num_gist_tokens=4, max_num_gist_tokens=8, gist_step=4,
        gist_min_text_len=4, gist_max_text_len=32, axes_dims=(4, 6, 6), axes_lens=(16, 16, 16)), **o})


def _bria_fibo2_embeds(pipe, prompt, negative):
    # Qwen3-VL hidden states, one bundle per text input: the Perceiver's, then one per injection block.
    c = config_of(pipe)
    shape = (1, 1 + len(c.injection_layer_ids), TOKENS, c.cap_feat_dim)
    return dict(prompt_embeds=emb(prompt, *shape), negative_prompt_embeds=emb(negative, *shape))


def _lumina_next_transformer(**o):
    return diffusers.LuminaNextDiT2DModel(**{**dict(
        sample_size=8, patch_size=2, in_channels=4, hidden_size=32, num_layers=10, num_attention_heads=2,
        num_kv_heads=2, multiple_of=16, cross_attention_dim=32), **o})


AMUSED_CODEBOOK = 16  # VQ codebook entries; the token vocabulary adds the mask token


def _amused_transformer(**o):
    # U-ViT: a conv down block, the 10 transformer layers on the 2x downsampled token grid, a conv up block.
    return diffusers.UVit2DModel(**{**dict(
        hidden_size=32, cond_embed_dim=32, micro_cond_encode_dim=2, micro_cond_embed_dim=10, encoder_hidden_size=32,
        vocab_size=AMUSED_CODEBOOK + 1, codebook_size=AMUSED_CODEBOOK, in_channels=16, block_out_channels=16,
        num_res_blocks=1, downsample=True, upsample=True, block_num_heads=2, num_hidden_layers=10,
        num_attention_heads=2, intermediate_size=64, sample_size=8), **o})


def _amused_components():
    vqvae = diffusers.VQModel(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        latent_channels=8, norm_num_groups=8, num_vq_embeddings=AMUSED_CODEBOOK, sample_size=64,
        mid_block_add_attention=False, lookup_from_codebook=True)
    return dict(scheduler=diffusers.AmusedScheduler(mask_token_id=AMUSED_CODEBOOK), vqvae=vqvae,
                **nones("text_encoder", "tokenizer"))


def _amused_embeds(pipe, prompt, negative):
    # CLIP's pooled text embedding and its penultimate hidden states.
    c = config_of(pipe)
    return dict(
        prompt_embeds=emb("pooled:" + prompt, 1, c.cond_embed_dim),
        encoder_hidden_states=emb(prompt, 1, TOKENS, c.encoder_hidden_size),
        negative_prompt_embeds=emb("pooled:" + negative, 1, c.cond_embed_dim),
        negative_encoder_hidden_states=emb(negative, 1, TOKENS, c.encoder_hidden_size),
    )


def _shap_e_prior(**o):
    # The prior denoises 32 latent tokens of width 32 (the implicit 3D function's MLP weights) from the CLIP text
    # embedding; its output carries a variance half that the pipeline drops.
    return diffusers.PriorTransformer(**{**dict(
        num_attention_heads=2, attention_head_dim=16, embedding_dim=32, num_embeddings=32, embedding_proj_dim=32,
        time_embed_dim=128, num_layers=10, clip_embed_dim=64, additional_embeddings=0, time_embed_act_fn="gelu",
        norm_in_type="layer", encoder_hid_proj_type=None, added_emb_type=None), **o})


def _shap_e_components():
    # The call takes no prompt embeddings: a tiny random CLIP text encoder. The renderer (a NeRF/STF decoder of the
    # latents into 20 views) runs only when images are asked for.
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from diffusers.pipelines.shap_e import ShapERenderer

    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=97, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
        projection_dim=32, max_position_embeddings=PROMPT_CHARS, eos_token_id=2)).eval()
    renderer = ShapERenderer(param_shapes=((8, 93), (8, 8), (8, 8), (8, 8)), d_latent=32, d_hidden=8, n_output=12,
                             background=(0.1, 0.1, 0.1))
    scheduler = diffusers.HeunDiscreteScheduler(  # Shap-E's scheduler settings
        beta_schedule="exp", num_train_timesteps=1024, prediction_type="sample", use_karras_sigmas=True,
        clip_sample=True, clip_sample_range=1.0)
    return dict(scheduler=scheduler, text_encoder=text_encoder, tokenizer=char_tokenizer(PROMPT_CHARS),
                shap_e_renderer=renderer)


VQ_DIFFUSION_CODEBOOK = 16  # VQ codebook entries; the transformer's classes add the mask class
VQ_DIFFUSION_TIMESTEPS = 100  # the scheduler's training timesteps: the transformer's AdaLayerNorm embeds each one


def _vq_diffusion_transformer(**o):
    # The discrete Transformer2DModel: embeds an 8x8 grid of codebook indices, runs 10 BasicTransformerBlocks (text by
    # cross-attention, the timestep by AdaLayerNorm) and returns log p(x_0) over the codebook for every token.
    return diffusers.Transformer2DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, num_layers=10, cross_attention_dim=32, attention_bias=True,
        sample_size=8, num_vector_embeds=VQ_DIFFUSION_CODEBOOK + 1, activation_fn="geglu-approximate",
        num_embeds_ada_norm=VQ_DIFFUSION_TIMESTEPS, norm_type="ada_norm"), **o})


def _vq_diffusion_components():
    # The call takes no prompt embeddings: a tiny random CLIP text encoder. The learned classifier-free embeddings
    # (the unconditional prompt) start at zeros in diffusers; the replica gives them seeded random values.
    from transformers import CLIPTextConfig, CLIPTextModel

    from diffusers.pipelines.deprecated.vq_diffusion import LearnedClassifierFreeSamplingEmbeddings

    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=97, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=PROMPT_CHARS, eos_token_id=2)).eval()
    uncond = LearnedClassifierFreeSamplingEmbeddings(learnable=True, hidden_size=32, length=PROMPT_CHARS)
    with torch.no_grad():
        uncond.embeddings.copy_(emb("learned-uncond", PROMPT_CHARS, 32))
    # `vq_embed_dim` must be set: the pipeline reads it from the config to shape the codebook lookup.
    vqvae = diffusers.VQModel(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        latent_channels=8, vq_embed_dim=8, norm_num_groups=8, num_vq_embeddings=VQ_DIFFUSION_CODEBOOK, sample_size=64,
        mid_block_add_attention=False)
    scheduler = diffusers.VQDiffusionScheduler(num_vec_classes=VQ_DIFFUSION_CODEBOOK + 1,
                                               num_train_timesteps=VQ_DIFFUSION_TIMESTEPS)
    return dict(scheduler=scheduler, vqvae=vqvae, text_encoder=text_encoder, tokenizer=char_tokenizer(PROMPT_CHARS),
                learned_classifier_free_sampling_embeddings=uncond)


ENTRIES: list[ZooEntry] = [
    ZooEntry("sd3", "StableDiffusion3Pipeline", _sd3_transformer,
         lambda: dict(scheduler=flow(), vae=vae4_shifted(), **nones(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3")),
         pooled_embeds("joint_attention_dim", "pooled_projection_dim")),
    ZooEntry("qwen_image", "QwenImagePipeline", _qwen_transformer,
         lambda: dict(scheduler=flow(), vae=_qwen_vae(), **nones("text_encoder", "tokenizer")),
         _qwen_embeds, call=dict(true_cfg_scale=4.0)),
    ZooEntry("flux2", "Flux2Pipeline", _flux2_transformer,
         lambda: dict(scheduler=flow(), vae=flux2_vae(), **nones("text_encoder", "tokenizer")),
         _flux2_embeds),
    ZooEntry("sana", "SanaPipeline", _sana_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(), vae=_sana_vae(),
                      **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.caption_channels), call=dict(use_resolution_binning=False, negative_prompt=None)),
    ZooEntry("hunyuandit", "HunyuanDiTPipeline", _hunyuandit_transformer,
         lambda: dict(scheduler=diffusers.DDPMScheduler(), vae=vae4(), safety_checker=None, feature_extractor=None,
                      requires_safety_checker=False,
                      **nones("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         two_encoder_embeds("cross_attention_dim", "cross_attention_dim_t5", "prompt_attention_mask", "t5:"),
         call=dict(use_resolution_binning=False)),
    ZooEntry("cogview3", "CogView3PlusPipeline", _cogview3_transformer,
         lambda: dict(scheduler=diffusers.CogVideoXDDIMScheduler(), vae=vae4(), **nones("text_encoder", "tokenizer")),
         text_embeds("text_embed_dim")),
    ZooEntry("cogview4", "CogView4Pipeline", _cogview4_transformer,
         lambda: dict(scheduler=flow(), vae=vae4(), **nones("text_encoder", "tokenizer")),
         text_embeds("text_embed_dim")),
    ZooEntry("lumina2", "Lumina2Pipeline", _lumina2_transformer,
         lambda: dict(scheduler=flow(), vae=vae4_shifted(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.cap_feat_dim)),
    ZooEntry("auraflow", "AuraFlowPipeline", _auraflow_transformer,
         lambda: dict(scheduler=flow(), vae=vae4(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.joint_attention_dim)),
    ZooEntry("chroma", "ChromaPipeline", _chroma_transformer,
         lambda: dict(scheduler=flow(), vae=flux_vae(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.joint_attention_dim, dtype=torch.bool)),
    ZooEntry("hidream", "HiDreamImagePipeline", _hidream_transformer,
         lambda: dict(scheduler=flow(), vae=vae4_shifted(), **nones(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3",
             "text_encoder_4", "tokenizer_4")),
         _hidream_embeds, setup=dict(default_sample_size=8)),
    ZooEntry("z_image", "ZImagePipeline", _zimage_transformer,
         lambda: dict(scheduler=flow(), vae=vae16(), **nones("text_encoder", "tokenizer")),
         _zimage_embeds),
    ZooEntry("bria", "BriaPipeline", _bria_transformer,
         lambda: dict(scheduler=flow(), vae=flux_vae(), **nones("text_encoder", "tokenizer")),
         text_embeds("joint_attention_dim")),
    ZooEntry("dit", "DiTPipeline", _dit_transformer,
         lambda: dict(scheduler=diffusers.DDIMScheduler(), vae=vae4()), call_inputs=_dit_inputs),
    ZooEntry("pixart_sigma", "PixArtSigmaPipeline", _pixart_sigma_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(), vae=vae4(),
                      **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.caption_channels), call=dict(use_resolution_binning=False, negative_prompt=None)),
    ZooEntry("kandinsky5", "Kandinsky5T2IPipeline", _kandinsky5_transformer,
         lambda: dict(scheduler=flow(), vae=flux_vae16(),
                      **nones("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _kandinsky5_embeds, output="image", setup=dict(resolutions=[(64, 64)]), randomize_zeros=True),
    ZooEntry("flux_kontext", "FluxKontextPipeline", _flux_kontext_transformer,
         lambda: dict(scheduler=flow(), vae=flux_vae(), **nones(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "image_encoder", "feature_extractor")),
         _flux_embeds, call=dict(image=seeded_image(), _auto_resize=False, max_area=64 * 64)),
    ZooEntry("hunyuan_image", "HunyuanImagePipeline", _hunyuan_image_transformer,
         lambda: dict(scheduler=flow(), vae=_hunyuan_image_vae(), guider=None, ocr_guider=None, **nones(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuan_image_embeds),
    ZooEntry("visualcloze", "VisualClozeGenerationPipeline", _visualcloze_transformer, _visualcloze_components,
         _visualcloze_embeds, takes_size=False),
    ZooEntry("bria_fibo", "BriaFiboPipeline", _bria_fibo_transformer, _bria_fibo_components, prompt_only,
         call=dict(max_sequence_length=PROMPT_CHARS)),
    # Qwen2.5-VL prompt embeddings; the prompt rewrite needs the VL model, so the replica turns it off.
    ZooEntry("longcat_image", "LongCatImagePipeline", _longcat_image_transformer,
         _longcat_image_components, _longcat_image_embeds, setup=dict(tokenizer_max_length=PROMPT_CHARS)),
    ZooEntry("ovis_image", "OvisImagePipeline", _ovis_image_transformer,
         lambda: dict(scheduler=flow(), vae=vae16(), **nones("text_encoder", "tokenizer")),
         text_embeds("joint_attention_dim"), call=dict(negative_prompt=None)),
    ZooEntry("prx", "PRXPipeline", _prx_transformer,
         lambda: dict(scheduler=flow(), vae=vae16(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.context_in_dim, dtype=torch.bool),
         call=dict(use_resolution_binning=False, negative_prompt=None),
         randomize_zeros=True),  # adaLN-zero: every block's modulation starts at zero,
    ZooEntry("glm_image", "GlmImagePipeline", _glm_image_transformer,
         lambda: dict(scheduler=flow(), vae=tiny_vae(16, latents_mean=[0.0] * 16, latents_std=[1.0] * 16),
                      **nones("tokenizer", "processor", "text_encoder", "vision_language_encoder")),
         _glm_image_embeds, call=dict(height=GLM_IMAGE_SIZE, width=GLM_IMAGE_SIZE)),
    # Cosmos-Predict2 text-to-image: one-frame video latents through the Wan VAE; T5 prompt embeddings.
    ZooEntry("cosmos", "Cosmos2TextToImagePipeline", _cosmos_transformer, _cosmos_components,
         text_embeds("text_embed_dim")),
    ZooEntry("ernie_image", "ErnieImagePipeline", _ernie_image_transformer,
         lambda: dict(scheduler=flow(), vae=flux2_vae(), **nones("text_encoder", "tokenizer")),
         _ernie_image_embeds, randomize_zeros=True),  # zero-initialised shared adaLN and output projection
    # Asymmetric CFG through a second, unconditional transformer. A constant guidance stands in for the default
    # per-step schedule, which has one entry per step of the checkpoint's 48.
    ZooEntry("ideogram4", "Ideogram4Pipeline", _ideogram4_transformer, _ideogram4_components,
         lambda pipe, prompt, negative: dict(prompt=prompt),
         call=dict(max_sequence_length=IDEOGRAM4_TEXT_TOKENS, guidance_scale=7.0, guidance_schedule=None),
         transformers=("transformer", "unconditional_transformer")),
    ZooEntry("krea2", "Krea2Pipeline", _krea2_transformer,
         lambda: dict(scheduler=_flow_shifted(), vae=_qwen_vae(), text_encoder_select_layers=(2, 5, 8),
                      **nones("text_encoder", "tokenizer")),
         _krea2_embeds),
    ZooEntry("qwen_image21", "QwenImage21Pipeline", _qwen_image21_transformer,
         lambda: dict(scheduler=_flow_shifted(), vae=_qwen_image21_vae(), text_encoder=None,
                      processor=_Qwen3VLTextProcessor(_qwen3_vl_tokenizer(PROMPT_CHARS))),
         _qwen_image21_embeds),
    ZooEntry("nucleus_moe_image", "NucleusMoEImagePipeline", _nucleus_moe_image_transformer,
         lambda: dict(scheduler=_flow_shifted(), vae=_qwen_vae(), **nones("text_encoder", "processor")),
         masked_embeds(lambda c: c.joint_attention_dim, mask_key="prompt_embeds_mask")),
    # Text-to-image mode (no `image`): with one, the pipeline encodes the reference with `latent_dist.sample()` and no
    # generator, i.e. from the global RNG, so two seeded calls differ and bit-exactness could not be checked.
    ZooEntry("joy_image_edit", "JoyImageEditPipeline", _joy_image_edit_transformer,
         lambda: dict(scheduler=flow(), vae=wan_vae(), **nones("text_encoder", "tokenizer", "processor")),
         _joy_image_edit_embeds, setup=dict(vae_image_processor=_joy_image_processor())),
    ZooEntry("bria_fibo2", "BriaFibo2Pipeline", _bria_fibo2_transformer,
         lambda: dict(scheduler=flow(), vae=flux2_vae(), **nones("text_encoder", "processor")),
         _bria_fibo2_embeds),
    ZooEntry("lumina_next", "LuminaPipeline", _lumina_next_transformer,
         lambda: dict(scheduler=flow(), vae=vae4(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.cross_attention_dim)),
    # A reference image, so step 0 is the K/V extract pass and the later steps read the cached reference K/V.
    ZooEntry("flux2_klein_kv", "Flux2KleinKVPipeline", lambda **o: _flux2_transformer(**{"guidance_embeds": False, **o}),
         lambda: dict(scheduler=flow(), vae=flux2_vae(), **nones("text_encoder", "tokenizer")),
         _flux2_embeds, call=dict(image=seeded_image())),
    # aMUSEd: masked-token generation; each step's transformer predicts codebook logits for every VQ token.
    ZooEntry("amused", "AmusedPipeline", _amused_transformer, _amused_components, _amused_embeds),
    # Shap-E text-to-3D: a PriorTransformer (`prior`) denoises the 3D latents; images are 20 rendered views.
    ZooEntry("shap_e", "ShapEPipeline", _shap_e_prior, _shap_e_components,
         lambda pipe, prompt, negative: dict(prompt=prompt),
         takes_size=False, transformers=("prior",),
         call=dict(frame_size=32)),  # the renderer needs 20 views x frame_size**2 rays in whole batches of 4096
    # VQ-Diffusion: discrete diffusion over VQ tokens; the transformer's sample_size fixes the size (8x8 tokens, 64 px).
    ZooEntry("vq_diffusion", "VQDiffusionPipeline", _vq_diffusion_transformer, _vq_diffusion_components,
         lambda pipe, prompt, negative: dict(prompt=prompt), takes_size=False),
]
