"""Image families on their offline replicas: SD3, Qwen-Image, FLUX.2, Sana, ..., each a `Spec` in `SPECS`."""

from __future__ import annotations

import diffusers
import torch

from ..replicas import _tiny_vae
from ._common import (
    TOKENS, PROMPT_CHARS, Spec, _emb, _mask, _flow, _vae4, _vae4_shifted, _vae16, _cfg, _masked_embeds,
    _text_embeds, _flux_vae, _none, _kontext_image, _flux_vae16, _char_tokenizer, _prompt_only,
)


def _sd3_transformer(**o):
    return diffusers.SD3Transformer2DModel(**{**dict(
        sample_size=32, patch_size=2, in_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, caption_projection_dim=32, pooled_projection_dim=32, out_channels=4,
        pos_embed_max_size=32), **o})


def _sd3_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.joint_attention_dim),
        pooled_prompt_embeds=_emb("pooled:" + prompt, 1, c.pooled_projection_dim),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, c.joint_attention_dim),
        negative_pooled_prompt_embeds=_emb("pooled:" + negative, 1, c.pooled_projection_dim),
    )


def _qwen_transformer(**o):
    return diffusers.QwenImageTransformer2DModel(**{**dict(
        patch_size=2, in_channels=64, out_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=(4, 6, 6)), **o})


def _qwen_vae():
    return diffusers.AutoencoderKLQwenImage(
        base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True])


def _qwen_embeds(pipe, prompt, negative):
    d = _cfg(pipe).joint_attention_dim
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, d), prompt_embeds_mask=_mask(),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, d), negative_prompt_embeds_mask=_mask(),
    )


def _flux2_transformer(**o):
    return diffusers.Flux2Transformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, timestep_guidance_channels=32, axes_dims_rope=(4, 4, 4, 4)), **o})


def _flux2_vae():
    return diffusers.AutoencoderKLFlux2(
        block_out_channels=(8, 16, 16, 16), layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64,
        mid_block_add_attention=False)


def _flux2_embeds(pipe, prompt, negative):
    return dict(prompt_embeds=_emb(prompt, 1, TOKENS, _cfg(pipe).joint_attention_dim))


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


def _hunyuandit_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.cross_attention_dim), prompt_attention_mask=_mask(),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, c.cross_attention_dim), negative_prompt_attention_mask=_mask(),
        prompt_embeds_2=_emb("t5:" + prompt, 1, TOKENS, c.cross_attention_dim_t5), prompt_attention_mask_2=_mask(),
        negative_prompt_embeds_2=_emb("t5:" + negative, 1, TOKENS, c.cross_attention_dim_t5),
        negative_prompt_attention_mask_2=_mask(),
    )


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
        patch_size=2, in_channels=4, out_channels=4, num_layers=1, num_single_layers=10, attention_head_dim=8,
        num_attention_heads=4, caption_channels=[32, 16], text_emb_dim=32, num_routed_experts=2,
        num_activated_experts=1, axes_dims_rope=(4, 2, 2), max_resolution=(32, 32), llama_layers=tuple(range(11))),
        **o})


def _hidream_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    llama_layers = len(c.llama_layers)
    t5, llama = c.caption_channels[0], c.caption_channels[1]
    return dict(
        prompt_embeds_t5=_emb("t5:" + prompt, 1, TOKENS, t5),
        negative_prompt_embeds_t5=_emb("t5:" + negative, 1, TOKENS, t5),
        prompt_embeds_llama3=_emb("llama:" + prompt, llama_layers, 1, TOKENS, llama),
        negative_prompt_embeds_llama3=_emb("llama:" + negative, llama_layers, 1, TOKENS, llama),
        pooled_prompt_embeds=_emb("pooled:" + prompt, 1, c.text_emb_dim),
        negative_pooled_prompt_embeds=_emb("pooled:" + negative, 1, c.text_emb_dim),
    )


def _zimage_transformer(**o):
    return diffusers.ZImageTransformer2DModel(**{**dict(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=10, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, cap_feat_dim=32, axes_dims=[4, 6, 6], axes_lens=[64, 32, 32]), **o})


def _zimage_embeds(pipe, prompt, negative):
    d = _cfg(pipe).cap_feat_dim
    return dict(prompt_embeds=[_emb(prompt, TOKENS, d)], negative_prompt_embeds=[_emb(negative, TOKENS, d)])


def _bria_transformer(**o):
    return diffusers.BriaTransformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=8, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=[4, 6, 6]), **o})


def _dit_transformer(**o):
    return diffusers.DiTTransformer2DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=10, norm_num_groups=32,
        sample_size=8, patch_size=2), **o})


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
    c = _cfg(pipe)
    return dict(
        prompt_embeds_qwen=_emb(prompt, 1, TOKENS, c.in_text_dim),
        prompt_embeds_clip=_emb("clip:" + prompt, 1, c.in_text_dim2),
        negative_prompt_embeds_qwen=_emb(negative, 1, TOKENS, c.in_text_dim),
        negative_prompt_embeds_clip=_emb("clip:" + negative, 1, c.in_text_dim2),
        prompt_cu_seqlens=torch.tensor([0, TOKENS], dtype=torch.int32),
        negative_prompt_cu_seqlens=torch.tensor([0, TOKENS], dtype=torch.int32),
    )


def _flux_kontext_transformer(**o):
    from ..replicas import flux_transformer

    return flux_transformer(**{"num_layers": 2, "num_single_layers": 8, "attention_head_dim": 16,
                               "num_attention_heads": 2, "axes_dims_rope": (4, 6, 6), **o})


def _flux_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(prompt_embeds=_emb(prompt, 1, TOKENS, c.joint_attention_dim),
                pooled_prompt_embeds=_emb("pooled:" + prompt, 1, c.pooled_projection_dim))


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
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.text_embed_dim), prompt_embeds_mask=_mask(),
        prompt_embeds_2=_emb("byt5:" + prompt, 1, TOKENS, c.text_embed_2_dim), prompt_embeds_mask_2=_mask(),
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
    return dict(scheduler=_flow(), vae=_flux_vae(), text_encoder=clip, tokenizer=_char_tokenizer(PROMPT_CHARS),
                text_encoder_2=t5, tokenizer_2=_char_tokenizer(PROMPT_CHARS), resolution=32)


def _visualcloze_embeds(pipe, prompt, negative):
    # check_inputs refuses prompt embeddings without a task prompt and a task prompt with them: the replica encodes
    # its prompts with tiny random CLIP and T5 encoders instead. One in-context example row, then the query row.
    image = _kontext_image(32)
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
    return dict(scheduler=_flow(), vae=_vae16(), text_encoder=text_encoder,
                tokenizer=_char_tokenizer(PROMPT_CHARS), text_processor=None)


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
    return dict(scheduler=_flow(), vae=_bria_fibo_vae(), text_encoder=text_encoder,
                tokenizer=_char_tokenizer(PROMPT_CHARS))


GLM_IMAGE_SIZE = 64  # the prior tokens fix the image size: the replica always runs at 64 px


def _glm_image_transformer(**o):
    return diffusers.GlmImageTransformer2DModel(**{**dict(
        patch_size=2, in_channels=16, out_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        text_embed_dim=32, time_embed_dim=16, condition_dim=8, prior_vq_quantizer_codebook_size=64), **o})


def _glm_image_embeds(pipe, prompt, negative):
    # GLM-Image's autoregressive vision-language model writes the prior image tokens that condition the DiT; the
    # replica passes seeded random ones (one per latent patch) with ByT5-like glyph embeddings.
    c = _cfg(pipe)
    tokens = (GLM_IMAGE_SIZE // pipe.vae_scale_factor // c.patch_size) ** 2
    generator = torch.Generator().manual_seed(len(prompt))
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.text_embed_dim),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, c.text_embed_dim),
        prior_token_ids=torch.randint(0, c.prior_vq_quantizer_codebook_size, (1, tokens), generator=generator),
    )


SPECS: list[Spec] = [
    Spec("sd3", "StableDiffusion3Pipeline", _sd3_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4_shifted(), **_none(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3")),
         _sd3_embeds),
    Spec("qwen_image", "QwenImagePipeline", _qwen_transformer,
         lambda: dict(scheduler=_flow(), vae=_qwen_vae(), **_none("text_encoder", "tokenizer")),
         _qwen_embeds, call=dict(true_cfg_scale=4.0)),
    Spec("flux2", "Flux2Pipeline", _flux2_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux2_vae(), **_none("text_encoder", "tokenizer")),
         _flux2_embeds),
    Spec("sana", "SanaPipeline", _sana_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(), vae=_sana_vae(),
                      **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), call=dict(use_resolution_binning=False, negative_prompt=None)),
    Spec("hunyuandit", "HunyuanDiTPipeline", _hunyuandit_transformer,
         lambda: dict(scheduler=diffusers.DDPMScheduler(), vae=_vae4(), safety_checker=None, feature_extractor=None,
                      requires_safety_checker=False,
                      **_none("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuandit_embeds, call=dict(use_resolution_binning=False)),
    Spec("cogview3", "CogView3PlusPipeline", _cogview3_transformer,
         lambda: dict(scheduler=diffusers.CogVideoXDDIMScheduler(), vae=_vae4(), **_none("text_encoder", "tokenizer")),
         _text_embeds("text_embed_dim")),
    Spec("cogview4", "CogView4Pipeline", _cogview4_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4(), **_none("text_encoder", "tokenizer")),
         _text_embeds("text_embed_dim")),
    Spec("lumina2", "Lumina2Pipeline", _lumina2_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4_shifted(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.cap_feat_dim)),
    Spec("auraflow", "AuraFlowPipeline", _auraflow_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.joint_attention_dim)),
    Spec("chroma", "ChromaPipeline", _chroma_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.joint_attention_dim, dtype=torch.bool)),
    Spec("hidream", "HiDreamImagePipeline", _hidream_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4_shifted(), **_none(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3",
             "text_encoder_4", "tokenizer_4")),
         _hidream_embeds, setup=dict(default_sample_size=8)),
    Spec("z_image", "ZImagePipeline", _zimage_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae16(), **_none("text_encoder", "tokenizer")),
         _zimage_embeds),
    Spec("bria", "BriaPipeline", _bria_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux_vae(), **_none("text_encoder", "tokenizer")),
         _text_embeds("joint_attention_dim")),
    Spec("dit", "DiTPipeline", _dit_transformer,
         lambda: dict(scheduler=diffusers.DDIMScheduler(), vae=_vae4()),
         lambda pipe, prompt, negative: dict(class_labels=[1])),
    Spec("pixart_sigma", "PixArtSigmaPipeline", _pixart_sigma_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(), vae=_vae4(),
                      **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), call=dict(use_resolution_binning=False, negative_prompt=None)),
    Spec("kandinsky5", "Kandinsky5T2IPipeline", _kandinsky5_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux_vae16(),
                      **_none("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _kandinsky5_embeds, output="image", setup=dict(resolutions=[(64, 64)]), randomize_zeros=True),
    Spec("flux_kontext", "FluxKontextPipeline", _flux_kontext_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux_vae(), **_none(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "image_encoder", "feature_extractor")),
         _flux_embeds, call=dict(image=_kontext_image(), _auto_resize=False, max_area=64 * 64)),
    Spec("hunyuan_image", "HunyuanImagePipeline", _hunyuan_image_transformer,
         lambda: dict(scheduler=_flow(), vae=_hunyuan_image_vae(), guider=None, ocr_guider=None, **_none(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuan_image_embeds),
    Spec("visualcloze", "VisualClozeGenerationPipeline", _visualcloze_transformer, _visualcloze_components,
         _visualcloze_embeds, takes_size=False),
    Spec("bria_fibo", "BriaFiboPipeline", _bria_fibo_transformer, _bria_fibo_components, _prompt_only,
         call=dict(max_sequence_length=PROMPT_CHARS)),
    # Qwen2.5-VL prompt embeddings; the prompt rewrite needs the VL model, so the replica turns it off.
    Spec("longcat_image", "LongCatImagePipeline", _longcat_image_transformer,
         _longcat_image_components, _longcat_image_embeds, setup=dict(tokenizer_max_length=PROMPT_CHARS)),
    Spec("ovis_image", "OvisImagePipeline", _ovis_image_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae16(), **_none("text_encoder", "tokenizer")),
         _text_embeds("joint_attention_dim"), call=dict(negative_prompt=None)),
    Spec("prx", "PRXPipeline", _prx_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae16(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.context_in_dim, dtype=torch.bool),
         call=dict(use_resolution_binning=False, negative_prompt=None),
         randomize_zeros=True),  # adaLN-zero: every block's modulation starts at zero,
    Spec("glm_image", "GlmImagePipeline", _glm_image_transformer,
         lambda: dict(scheduler=_flow(), vae=_tiny_vae(16, latents_mean=[0.0] * 16, latents_std=[1.0] * 16),
                      **_none("tokenizer", "processor", "text_encoder", "vision_language_encoder")),
         _glm_image_embeds, call=dict(height=GLM_IMAGE_SIZE, width=GLM_IMAGE_SIZE)),
]
