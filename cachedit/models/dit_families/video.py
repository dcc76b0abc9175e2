"""Video families on their offline replicas (a few 32 px frames each): Wan, HunyuanVideo, CogVideoX, LTX, ...."""

from __future__ import annotations

import diffusers

from ._common import (
    TOKENS, Spec, _emb, _mask, _flow, _cfg, _masked_embeds, _text_embeds, _none, _wan_vae, _kontext_image,
)


def _wan_transformer(**o):
    return diffusers.WanTransformer3DModel(**{**dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=32, ffn_dim=32, num_layers=10, rope_max_seq_len=32), **o})


def _skyreels_transformer(**o):
    return diffusers.SkyReelsV2Transformer3DModel(**{**dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=32, ffn_dim=32, num_layers=10, rope_max_seq_len=32), **o})


def _hunyuan_video_transformer(**o):
    return diffusers.HunyuanVideoTransformer3DModel(**{**dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=2, num_single_layers=8,
        num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True, text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 4, 4)), **o})


def _hunyuan_video_vae():
    return diffusers.AutoencoderKLHunyuanVideo(
        latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
        spatial_compression_ratio=8, temporal_compression_ratio=4, mid_block_add_attention=False)


def _hunyuan_video_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.text_embed_dim), prompt_attention_mask=_mask(),
        pooled_prompt_embeds=_emb("pooled:" + prompt, 1, c.pooled_projection_dim),
    )


def _cogvideox_transformer(**o):
    return diffusers.CogVideoXTransformer3DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=10, sample_width=4, sample_height=4, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=TOKENS), **o})


def _cogvideox_vae():
    return diffusers.AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2,
        temporal_compression_ratio=4)


def _ltx_transformer(**o):
    return diffusers.LTXVideoTransformer3DModel(**{**dict(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, num_layers=10, caption_channels=16), **o})


def _ltx_vae():
    return diffusers.AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False)


def _mochi_transformer(**o):
    return diffusers.MochiTransformer3DModel(**{**dict(
        patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=10, pooled_projection_dim=16,
        in_channels=12, out_channels=None, qk_norm="rms_norm", text_embed_dim=32, time_embed_dim=4,
        activation_fn="swiglu", max_sequence_length=TOKENS), **o})


def _mochi_vae():
    return diffusers.AutoencoderKLMochi(
        latent_channels=12, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32), layers_per_block=(1, 1, 1, 1, 1))


def _allegro_transformer(**o):
    return diffusers.AllegroTransformer3DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4, num_layers=10,
        cross_attention_dim=24, sample_height=8, sample_width=8, sample_frames=8, caption_channels=24), **o})


def _allegro_vae():
    vae = diffusers.AutoencoderKLAllegro(
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2,
        temporal_compression_ratio=4)
    vae.enable_tiling()  # Allegro's VAE decodes only tiled (as the diffusers docs example sets up)
    return vae


def _cosmos_transformer(**o):
    return diffusers.CosmosTransformer3DModel(**{**dict(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=10, mlp_ratio=2,
        text_embed_dim=32, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
        concat_padding_mask=True, extra_pos_embed_type=None), **o})


def _easyanimate_transformer(**o):
    return diffusers.EasyAnimateTransformer3DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=16,
        text_embed_dim=32, num_layers=10, mmdit_layers=10, sample_width=8, sample_height=8, patch_size=2), **o})


def _easyanimate_vae():
    return diffusers.AutoencoderKLMagvit(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        norm_num_groups=2, spatial_group_norm=False)


def _sana_video_transformer(**o):
    return diffusers.SanaVideoTransformer3DModel(**{**dict(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=10,
        num_cross_attention_heads=2, cross_attention_head_dim=16, cross_attention_dim=32, caption_channels=32,
        sample_size=8, patch_size=(1, 2, 2), rope_max_seq_len=32), **o})


def _hunyuan_video15_transformer(**o):
    # in_channels: the latents, the (empty in text-to-video) condition latents and their mask, concatenated.
    return diffusers.HunyuanVideo15Transformer3DModel(**{**dict(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=10,
        num_refiner_layers=1, text_embed_dim=32, text_embed_2_dim=16, image_embed_dim=16, rope_axes_dim=(4, 6, 6),
        target_size=64), **o})


def _hunyuan_video15_vae():
    return diffusers.AutoencoderKLHunyuanVideo15(
        latent_channels=4, block_out_channels=(8, 8, 8, 8, 8), layers_per_block=1)


def _hunyuan_video15_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.text_embed_dim), prompt_embeds_mask=_mask(),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, c.text_embed_dim), negative_prompt_embeds_mask=_mask(),
        prompt_embeds_2=_emb("byt5:" + prompt, 1, TOKENS, c.text_embed_2_dim), prompt_embeds_mask_2=_mask(),
        negative_prompt_embeds_2=_emb("byt5:" + negative, 1, TOKENS, c.text_embed_2_dim),
        negative_prompt_embeds_mask_2=_mask(),
    )


def _chronoedit_transformer(**o):
    # Wan 2.1 image-to-video layout: latents, the image's condition latents and their 4-channel mask, concatenated;
    # CLIP image tokens through an added key/value projection.
    return diffusers.ChronoEditTransformer3DModel(**{**dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16 + 16 + 4, out_channels=16,
        text_dim=32, freq_dim=32, ffn_dim=32, num_layers=10, image_dim=32, added_kv_proj_dim=24,
        rope_max_seq_len=32), **o})


def _chronoedit_components():
    # The call refuses image embeddings beside the image it edits: a tiny random CLIP vision encoder encodes it.
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        patch_size=8, projection_dim=32)).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return dict(scheduler=_flow(), vae=_wan_vae(), image_encoder=image_encoder, image_processor=image_processor,
                **_none("text_encoder", "tokenizer"))


def _chronoedit_embeds(pipe, prompt, negative):
    return {**_text_embeds("text_dim")(pipe, prompt, negative), "image": _kontext_image(32)}


SPECS: list[Spec] = [
    Spec("wan", "WanPipeline", _wan_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=3.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=_wan_vae(), transformer_2=None, **_none("text_encoder", "tokenizer")),
         _text_embeds("text_dim"), size=32, frames=5, output="frames"),
    # Wan 2.2 A14B: a high-noise and a low-noise expert, switched at boundary_ratio of the timesteps.
    Spec("wan22", "WanPipeline", _wan_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=3.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=_wan_vae(), boundary_ratio=0.875, **_none("text_encoder", "tokenizer")),
         _text_embeds("text_dim"), size=32, frames=5, output="frames", transformers=("transformer", "transformer_2")),
    Spec("skyreels_v2", "SkyReelsV2Pipeline", _skyreels_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=8.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=_wan_vae(), **_none("text_encoder", "tokenizer")),
         _text_embeds("text_dim"), size=32, frames=5, output="frames"),
    Spec("hunyuan_video", "HunyuanVideoPipeline", _hunyuan_video_transformer,
         lambda: dict(scheduler=_flow(), vae=_hunyuan_video_vae(),
                      **_none("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuan_video_embeds, size=32, frames=5, output="frames"),
    Spec("cogvideox", "CogVideoXPipeline", _cogvideox_transformer,
         lambda: dict(scheduler=diffusers.CogVideoXDDIMScheduler(), vae=_cogvideox_vae(),
                      **_none("text_encoder", "tokenizer")),
         _text_embeds("text_embed_dim"), size=32, frames=9, output="frames"),
    Spec("ltx", "LTXPipeline", _ltx_transformer,
         lambda: dict(scheduler=_flow(), vae=_ltx_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), size=32, frames=9, output="frames"),
    Spec("mochi", "MochiPipeline", _mochi_transformer,
         lambda: dict(scheduler=_flow(), vae=_mochi_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.text_embed_dim), size=32, frames=7, output="frames"),
    Spec("allegro", "AllegroPipeline", _allegro_transformer,
         lambda: dict(scheduler=diffusers.EulerAncestralDiscreteScheduler(),
                      vae=_allegro_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), size=32, frames=8, output="frames",
         call=dict(negative_prompt=None)),
    Spec("easyanimate", "EasyAnimatePipeline", _easyanimate_transformer,
         lambda: dict(scheduler=_flow(), vae=_easyanimate_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.text_embed_dim), size=32, frames=5, output="frames"),
    Spec("sana_video", "SanaVideoPipeline", _sana_video_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(flow_shift=8.0, prediction_type="flow_prediction",
                                                                      use_flow_sigmas=True),
                      vae=_wan_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), size=32, frames=5, frames_key="frames", output="frames",
         call=dict(use_resolution_binning=False, negative_prompt=None)),
    # Classifier-free guidance comes from the pipeline's guider (its call takes no guidance_scale).
    Spec("hunyuan_video15", "HunyuanVideo15Pipeline", _hunyuan_video15_transformer,
         lambda: dict(scheduler=_flow(), vae=_hunyuan_video15_vae(),
                      guider=diffusers.ClassifierFreeGuidance(guidance_scale=6.0),
                      **_none("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuan_video15_embeds, size=32, frames=5, output="frames",
         setup=dict(vision_num_semantic_tokens=TOKENS)),  # SigLIP's 729 image tokens, all masked in text-to-video,
    # The `wan_single` registry family (WanAnimate, ChronoEdit): ChronoEdit edits one image through a short video.
    Spec("chronoedit", "ChronoEditPipeline", _chronoedit_transformer, _chronoedit_components, _chronoedit_embeds,
         size=32, frames=5, output="frames"),
]
