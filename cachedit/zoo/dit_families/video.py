"""Video families on their offline replicas (a few 32 px frames each): Wan, HunyuanVideo, CogVideoX, LTX, ...."""

from __future__ import annotations

import diffusers

from ..zoo_entry import ZooEntry
from .parts import (
    TOKENS, char_tokenizer, config_of, emb, flow, mask, masked_embeds, nones, pooled_embeds, prompt_only, seeded_image,
    text_embeds, two_encoder_embeds, vae4, wan_vae,
)


# The tiny Wan 2.1 backbone, which SkyReels-V2, ChronoEdit, Helios and AnyFlow build on.
WAN_TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
                text_dim=32, freq_dim=32, ffn_dim=32, num_layers=10, rope_max_seq_len=32)


def _wan_transformer(**o):
    return diffusers.WanTransformer3DModel(**{**WAN_TINY, **o})


def _skyreels_transformer(**o):
    return diffusers.SkyReelsV2Transformer3DModel(**{**WAN_TINY, **o})


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
    c = config_of(pipe)
    return dict(
        prompt_embeds=emb(prompt, 1, TOKENS, c.text_embed_dim), prompt_attention_mask=mask(),
        pooled_prompt_embeds=emb("pooled:" + prompt, 1, c.pooled_projection_dim),
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


def _chronoedit_transformer(**o):
    # Wan 2.1 image-to-video layout: latents, the image's condition latents and their 4-channel mask, concatenated;
    # CLIP image tokens through an added key/value projection.
    return diffusers.ChronoEditTransformer3DModel(**{**WAN_TINY, **dict(
        in_channels=16 + 16 + 4, image_dim=32, added_kv_proj_dim=24), **o})


def _chronoedit_components():
    # The call refuses image embeddings beside the image it edits: a tiny random CLIP vision encoder encodes it.
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        patch_size=8, projection_dim=32)).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return dict(scheduler=flow(), vae=wan_vae(), image_encoder=image_encoder, image_processor=image_processor,
                **nones("text_encoder", "tokenizer"))


def _chronoedit_embeds(pipe, prompt, negative):
    return {**text_embeds("text_dim")(pipe, prompt, negative), "image": seeded_image(32)}


def _ltx2_transformer(**o):
    # Video latents of 8 channels (rope scaled by the tiny VAE's 2x8x8 compression); audio latents of 2 channels x 2
    # mel bins, packed to 4. The prompt tokens come from the connectors, 32 channels wide.
    return diffusers.LTX2VideoTransformer3DModel(**{**dict(
        in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=16, cross_attention_dim=32,
        vae_scale_factors=(2, 8, 8), audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
        audio_attention_head_dim=8, audio_cross_attention_dim=16, num_layers=10, caption_channels=32), **o})


def _ltx2_components():
    from diffusers.pipelines.ltx2 import LTX2TextConnectors, LTX2Vocoder

    # The connectors read every Gemma 3 layer's hidden states (stand-in: 3 layers of 32 channels) and give the video
    # and audio prompt tokens; learnable registers fill padding, as on the hub checkpoint.
    connectors = LTX2TextConnectors(
        caption_channels=32, text_proj_in_factor=3, video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=16, video_connector_num_layers=1,
        video_connector_num_learnable_registers=TOKENS, audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=16, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=TOKENS, connector_rope_base_seq_len=32)
    vae = diffusers.AutoencoderKLLTX2Video(  # one 2x space-time stage after a 4x4 patchify: 8x spatial, 2x temporal
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8,), decoder_block_out_channels=(8,),
        layers_per_block=(1,), decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,), decoder_inject_noise=(False, False), downsample_type=("spatiotemporal",),
        upsample_residual=(False,), upsample_factor=(1,), timestep_conditioning=False, patch_size=4, patch_size_t=1,
        encoder_causal=True, decoder_causal=False)
    audio_vae = diffusers.AutoencoderKLLTX2Audio(  # 8 mel bins at 16 kHz, 4x compressed in time and frequency
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, in_channels=2, resolution=32,
        latent_channels=2, mel_bins=8)
    vocoder = LTX2Vocoder(
        in_channels=2 * 8, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2],
        resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], output_sampling_rate=16000)
    return dict(scheduler=flow(), vae=vae, audio_vae=audio_vae, connectors=connectors, vocoder=vocoder,
                **nones("text_encoder", "tokenizer"))


def _ltx2_embeds(pipe, prompt, negative):
    c = pipe.connectors.config
    d = c.caption_channels * c.text_proj_in_factor  # the text encoder's layers, stacked and flattened
    return dict(prompt_embeds=emb(prompt, 1, TOKENS, d), prompt_attention_mask=mask(),
                negative_prompt_embeds=emb(negative, 1, TOKENS, d), negative_prompt_attention_mask=mask())


CONSISID_FACE = dict(LFE_id_dim=8, LFE_vit_dim=8, LFE_num_scale=1)  # face-model feature widths of the replica


def _consisid_transformer(**o):
    # CogVideoX image-to-video layout (latents and image latents concatenated: 2 x 4 channels) plus the identity
    # modules: a local facial extractor and a perceiver cross-attention after every other block (kv width 2/3 of 32).
    return diffusers.ConsisIDTransformer3DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=10, sample_width=4, sample_height=4, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=TOKENS, use_rotary_positional_embeddings=True,
        is_train_face=True, cross_attn_interval=2, cross_attn_dim_head=8, cross_attn_num_heads=2, LFE_depth=2,
        LFE_dim_head=8, LFE_num_heads=2, LFE_num_id_token=1, LFE_num_querie=4, LFE_output_dim=21, LFE_ff_mult=1,
        **CONSISID_FACE), **o})


def _consisid_embeds(pipe, prompt, negative):
    # The face models (insightface, EVA-CLIP, face parsing) run outside the pipeline, whose call takes their outputs:
    # seeded stand-ins of the identity embedding `id_cond` and the ViT hidden states `id_vit_hidden` (one per scale).
    c = config_of(pipe)
    return {
        **text_embeds("text_embed_dim")(pipe, prompt, negative), "image": seeded_image(32),
        "id_cond": emb("face-id", 1, c.LFE_id_dim),
        "id_vit_hidden": [emb(f"face-vit{i}", 1, TOKENS, c.LFE_vit_dim) for i in range(c.LFE_num_scale)],
    }


def _kandinsky6_transformer(**o):
    # 4 video latent channels (the tiny HunyuanVideo VAE's) plus their condition copy and mask; 4 audio latent
    # channels (the tiny MMAudio VAE's). Cross-modal RoPE, gates and modulation as in the released checkpoints; two
    # token types make the image-to-video path valid.
    return diffusers.Kandinsky6Transformer3DModel(**{**dict(
        in_visual_dim=4, out_visual_dim=4, in_text_dim=32, in_text_dim2=16, time_dim=16, patch_size=(1, 2, 2),
        model_dim=32, ff_dim=64, num_text_blocks=1, num_visual_blocks=10, axes_dims=(4, 6, 6), in_audio_dim=4,
        out_audio_dim=4, text_token_padding=True, ca_rope=True, cross_gates=True, fix_modulation=True,
        visual_token_type_num_embeddings=2), **o})


def _kandinsky6_components():
    # The audio VAE (8 mel bins at 1024 Hz: a latent per 16 samples) and its vocoder (8x upsampling, its hop length)
    # make the call denoise audio beside the video, as `sample_audio=True` does on the hub checkpoint.
    audio_vae = diffusers.MMAudioVAE(mel_bins=8, latent_channels=4, hidden_channels=8, channel_multipliers=(1, 1),
                                     layers_per_block=1, sample_rate=1024, n_fft=32, hop_length=8)
    vocoder = diffusers.MMAudioVocoder(num_mels=8, upsample_initial_channel=8, upsample_rates=(8,),
                                       upsample_kernel_sizes=(16,), resblock_kernel_sizes=(3,),
                                       resblock_dilation_sizes=((1,),))
    return dict(scheduler=flow(), vae=_hunyuan_video_vae(), audio_vae=audio_vae, vocoder=vocoder,
                **nones("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"))


K6_SR_TILE = 32  # pixels of the replica's one trained tile: 8x8 latents, the NABLA attention's 8x8 token block


def _kandinsky6_sr_transformer(**o):
    # A plain velocity checkpoint (out = in channels; the distilled ones widen it for PiflowScheduler).
    return diffusers.Kandinsky6SRTransformer3DModel(**{**dict(
        in_visual_dim=4, out_visual_dim=4, time_dim=16, model_dim=32, ff_dim=64, num_visual_blocks=10,
        axes_dims=(4, 6, 6), nabla_window=(3, 3, 3), tile_sizes=((K6_SR_TILE, K6_SR_TILE),)), **o})


def _kandinsky6_sr_components():
    vae = diffusers.Kandinsky6SRVAE(latent_channels=4, encoder_block_out_channels=(8, 8, 8),
                                    decoder_block_out_channels=(8, 8, 8), layers_per_block=1)  # 4x spatial
    return dict(scheduler=flow(), vae=vae, latent_upscaler=None)


def _kandinsky6_sr_embeds(pipe, prompt, negative):
    # Text-free: the input is a low-resolution video (5 frames, one tile at 2x), a seeded stand-in for a generated one.
    return dict(video=[seeded_image(K6_SR_TILE // 2)] * 5)


def _helios_transformer(**o):
    wan = {k: v for k, v in WAN_TINY.items() if k != "rope_max_seq_len"}
    return diffusers.HeliosTransformer3DModel(**{**wan, "rope_dim": (4, 4, 4), **o})


def _motif_video_transformer(**o):
    # in_channels: latents, condition latents (empty in text-to-video) and their mask. The hub checkpoint's layout in
    # small: dual-stream blocks, single-stream blocks, then DDT decoder blocks at the end of the single list.
    return diffusers.MotifVideoTransformer3DModel(**{**dict(
        in_channels=33, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        num_single_layers=8, num_decoder_layers=3, mlp_ratio=2.0, text_embed_dim=32, rope_axes_dim=(4, 6, 6),
        enable_text_cross_attention_dual=True, enable_text_cross_attention_single=True), **o})


SANA_WM_FRAMES = 3  # the tiny LTX-2 VAE below compresses no frames, so every frame is a latent frame


def _sana_wm_vae():
    # LTX-2 VAE with two spatial downsamplings (4x) and no temporal one: 32 px frames become 8x8 latents.
    return diffusers.AutoencoderKLLTX2Video(
        latent_channels=4, block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), layers_per_block=(1, 1, 1),
        decoder_layers_per_block=(1, 1, 1), spatio_temporal_scaling=(True, True),
        decoder_spatio_temporal_scaling=(True, True), decoder_inject_noise=(False,) * 3,
        downsample_type=("spatial", "spatial"), upsample_type=("spatial", "spatial"), upsample_residual=(False, False),
        upsample_factor=(1, 1), patch_size=1, patch_size_t=1, decoder_causal=False, temporal_compression_ratio=1)


def _sana_wm_transformer(**o):
    # Every 4th block runs softmax camera attention, the others the GDN one; the Plücker rays come packed per VAE
    # temporal chunk (6 x 1 channels here).
    return diffusers.SanaWMTransformer3DModel(**{**dict(
        in_channels=4, num_layers=10, hidden_size=32, num_attention_heads=2, softmax_every_n=4, linear_head_dim=16,
        caption_channels=32, mlp_ratio=2.0, chunk_plucker_channels=6, chunk_plucker_post_attn_blocks=10), **o})


def _sana_wm_camera(frames: int = SANA_WM_FRAMES):
    """Seeded small camera-to-world poses ``(F, 4, 4)`` (a yaw and a step per frame) and ``[fx, fy, cx, cy]``."""
    import numpy as np

    rng = np.random.default_rng(0)
    poses = np.repeat(np.eye(4, dtype=np.float32)[None], frames, axis=0)
    for i in range(1, frames):
        yaw = 0.05 * i * rng.standard_normal()
        poses[i, :3, :3] = [[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]]
        poses[i, :3, 3] = poses[i - 1, :3, 3] + 0.1 * rng.standard_normal(3)
    return poses, [32.0, 32.0, 16.0, 16.0]


def _sana_wm_embeds(pipe, prompt, negative):
    # Gemma-2 hidden states are (1, 1, tokens, dim); the call also needs the first frame and a camera trajectory.
    d = config_of(pipe).caption_channels
    c2w, intrinsics = _sana_wm_camera()
    return dict(prompt=prompt, image=seeded_image(32), c2w=c2w, intrinsics=intrinsics,
                prompt_embeds=emb(prompt, 1, 1, TOKENS, d), prompt_attention_mask=mask(),
                negative_prompt_embeds=emb(negative, 1, 1, TOKENS, d), negative_prompt_attention_mask=mask())


def _anyflow_transformer(**o):
    # The Wan 2.1 backbone with AnyFlow's dual (source t, target r) timestep embedding.
    return diffusers.AnyFlowTransformer3DModel(**{**WAN_TINY, **o})


def _cosmos3_omni_transformer(**o):
    # The vision tokens are 2x2 patches of the 16-channel Wan latents (patch_latent_dim = 2 * 2 * 16); the mRoPE
    # axes split head_dim / 2.
    return diffusers.Cosmos3OmniTransformer(**{**dict(
        head_dim=16, hidden_size=32, intermediate_size=64, latent_channel=16, latent_patch_size=2,
        num_attention_heads=2, num_hidden_layers=10, num_key_value_heads=1, patch_latent_dim=64,
        rope_axes_dim=[2, 3, 3], vocab_size=len(_cosmos3_tokenizer())), **o})


def _cosmos3_tokenizer():
    """The transformer embeds token ids itself (no text encoder): a character tokenizer with the generation-start
    token the pipeline appends and a plain chat template (the pipeline tokenizes through apply_chat_template)."""
    tokenizer = char_tokenizer(4096)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|vision_start|>"]})
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}assistant:{% endif %}")
    return tokenizer


def _cosmos3_omni_components():
    # The cosmos_guardrail safety checker cannot be installed here: the pipeline's own switch turns it off.
    return dict(text_tokenizer=_cosmos3_tokenizer(), vae=wan_vae(), scheduler=diffusers.UniPCMultistepScheduler(),
                sound_tokenizer=None, enable_safety_checker=False)


LATTE_FRAMES = 4  # the temporal position embedding has `video_length` rows: the replica's frame count


def _latte_transformer(**o):
    # 10 spatial and 10 temporal blocks: the cached stack is the 10 (spatial, temporal) pairs. out_channels = 2 x 4:
    # the checkpoint predicts a learned variance, which the pipeline drops.
    return diffusers.LatteTransformer3DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=10,
        cross_attention_dim=32, sample_size=4, patch_size=2, activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=32,
        video_length=LATTE_FRAMES), **o})


def _anyflow_far_transformer(**o):
    # The causal (FAR) variant of AnyFlow's Wan 2.1 backbone: 5 frames are 2 latent frames, generated as 2 chunks of 1.
    # Its self-attention runs on PyTorch's flex backend only (a BlockMask), which is slow uncompiled on CPU.
    return diffusers.AnyFlowFARTransformer3DModel(
        **{**WAN_TINY, "attention_head_dim": 16, "chunk_partition": (1, 1), **o})


def _anyflow_components():
    return dict(scheduler=diffusers.FlowMapEulerDiscreteScheduler(), vae=wan_vae(),
                **nones("text_encoder", "tokenizer"))


ENTRIES: list[ZooEntry] = [
    ZooEntry("wan", "WanPipeline", _wan_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=3.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=wan_vae(), transformer_2=None, **nones("text_encoder", "tokenizer")),
         text_embeds("text_dim"), size=32, frames=5, output="frames"),
    # Wan 2.2 A14B: a high-noise and a low-noise expert, switched at boundary_ratio of the timesteps.
    ZooEntry("wan22", "WanPipeline", _wan_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=3.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=wan_vae(), boundary_ratio=0.875, **nones("text_encoder", "tokenizer")),
         text_embeds("text_dim"), size=32, frames=5, output="frames", transformers=("transformer", "transformer_2")),
    ZooEntry("skyreels_v2", "SkyReelsV2Pipeline", _skyreels_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=8.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=wan_vae(), **nones("text_encoder", "tokenizer")),
         text_embeds("text_dim"), size=32, frames=5, output="frames"),
    ZooEntry("hunyuan_video", "HunyuanVideoPipeline", _hunyuan_video_transformer,
         lambda: dict(scheduler=flow(), vae=_hunyuan_video_vae(),
                      **nones("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuan_video_embeds, size=32, frames=5, output="frames"),
    ZooEntry("cogvideox", "CogVideoXPipeline", _cogvideox_transformer,
         lambda: dict(scheduler=diffusers.CogVideoXDDIMScheduler(), vae=_cogvideox_vae(),
                      **nones("text_encoder", "tokenizer")),
         text_embeds("text_embed_dim"), size=32, frames=9, output="frames"),
    ZooEntry("ltx", "LTXPipeline", _ltx_transformer,
         lambda: dict(scheduler=flow(), vae=_ltx_vae(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.caption_channels), size=32, frames=9, output="frames"),
    ZooEntry("mochi", "MochiPipeline", _mochi_transformer,
         lambda: dict(scheduler=flow(), vae=_mochi_vae(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.text_embed_dim), size=32, frames=7, output="frames"),
    ZooEntry("allegro", "AllegroPipeline", _allegro_transformer,
         lambda: dict(scheduler=diffusers.EulerAncestralDiscreteScheduler(),
                      vae=_allegro_vae(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.caption_channels), size=32, frames=8, output="frames",
         call=dict(negative_prompt=None)),
    ZooEntry("easyanimate", "EasyAnimatePipeline", _easyanimate_transformer,
         lambda: dict(scheduler=flow(), vae=_easyanimate_vae(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.text_embed_dim), size=32, frames=5, output="frames"),
    ZooEntry("sana_video", "SanaVideoPipeline", _sana_video_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(flow_shift=8.0, prediction_type="flow_prediction",
                                                                      use_flow_sigmas=True),
                      vae=wan_vae(), **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.caption_channels), size=32, frames=5, frames_key="frames", output="frames",
         call=dict(use_resolution_binning=False, negative_prompt=None)),
    # Classifier-free guidance comes from the pipeline's guider (its call takes no guidance_scale).
    ZooEntry("hunyuan_video15", "HunyuanVideo15Pipeline", _hunyuan_video15_transformer,
         lambda: dict(scheduler=flow(), vae=_hunyuan_video15_vae(),
                      guider=diffusers.ClassifierFreeGuidance(guidance_scale=6.0),
                      **nones("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         two_encoder_embeds("text_embed_dim", "text_embed_2_dim", "prompt_embeds_mask", "byt5:"),
         size=32, frames=5, output="frames",
         setup=dict(vision_num_semantic_tokens=TOKENS)),  # SigLIP's 729 image tokens, all masked in text-to-video,
    # The `wan_single` registry family (WanAnimate, ChronoEdit): ChronoEdit edits one image through a short video.
    ZooEntry("chronoedit", "ChronoEditPipeline", _chronoedit_transformer, _chronoedit_components, _chronoedit_embeds,
         size=32, frames=5, output="frames"),
    # Video and audio together; the call returns the audio beside the frames (its `audio`), the replica's output is
    # the frames. Every step runs the guidance branches cond_uncond and uncond_modality; the uncond_stg branch is off:
    # it perturbs block 28 by default, which 10 blocks lack, so it would only recompute the conditional prediction.
    ZooEntry("ltx2", "LTX2Pipeline", _ltx2_transformer, _ltx2_components, _ltx2_embeds, size=32, frames=5,
         output="frames", call=dict(stg_scale=0.0, audio_stg_scale=0.0)),
    # Identity-preserving image-to-video on CogVideoX; the face models' outputs are seeded stand-ins.
    ZooEntry("consisid", "ConsisIDPipeline", _consisid_transformer,
         lambda: dict(scheduler=diffusers.CogVideoXDPMScheduler(), vae=_cogvideox_vae(),
                      **nones("text_encoder", "tokenizer")),
         _consisid_embeds, size=32, frames=9, output="frames"),
    # Video and audio denoised together: the fused blocks carry both streams. The call returns the audio beside the
    # frames (its `audio`); the replica's output is the frames.
    ZooEntry("kandinsky6", "Kandinsky6TI2VAPipeline", _kandinsky6_transformer, _kandinsky6_components,
         pooled_embeds("in_text_dim", "in_text_dim2", "clip:"),
         size=32, frames=5, output="frames"),
    # Super-resolves a 16 px video 2x; the call takes no size, and can only return decoded frames.
    ZooEntry("kandinsky6_sr", "Kandinsky6SRPipeline", _kandinsky6_sr_transformer, _kandinsky6_sr_components,
         _kandinsky6_sr_embeds, takes_size=False, output="frames", call=dict(resolution_scale=2)),
    # One autoregressive chunk of 2 latent frames; the single-stage schedule HeliosPipeline sets (the pyramid
    # pipeline's is multi-stage).
    ZooEntry("helios", "HeliosPipeline", _helios_transformer,
         lambda: dict(scheduler=diffusers.HeliosScheduler(stages=1, use_dynamic_shifting=True), vae=wan_vae(),
                      **nones("text_encoder", "tokenizer")),
         text_embeds("text_dim"), size=32, frames=5, output="frames", call=dict(num_latent_frames_per_chunk=2)),
    # Classifier-free guidance comes from the pipeline's guider (its call takes no guidance_scale).
    ZooEntry("motif_video", "MotifVideoPipeline", _motif_video_transformer,
         lambda: dict(scheduler=diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True), vae=wan_vae(),
                      guider=diffusers.ClassifierFreeGuidance(guidance_scale=5.0), feature_extractor=None,
                      **nones("text_encoder", "tokenizer")),
         masked_embeds(lambda c: c.text_embed_dim), size=32, frames=5, output="frames"),
    # Camera-controlled image-to-video; the plucker projection is zero-initialised, so randomize_zeros lets the camera
    # rays reach the output of the random replica.
    ZooEntry("sana_wm", "SanaWMPipeline", _sana_wm_transformer,
         lambda: dict(scheduler=flow(), vae=_sana_wm_vae(), **nones("text_encoder", "tokenizer")),
         _sana_wm_embeds, size=32, frames=SANA_WM_FRAMES, output="frames", randomize_zeros=True),
    ZooEntry("anyflow", "AnyFlowPipeline", _anyflow_transformer, _anyflow_components,
         text_embeds("text_dim"), size=32, frames=5, output="frames"),
    # Chunk-wise autoregressive: after each chunk but the last, one more transformer call writes every block's KV cache
    # (run uncached). No negative embeddings: guidance stays 1.0 (fused into the distilled weights), and the pipeline
    # would otherwise batch them with the unguided latents.
    ZooEntry("anyflow_far", "AnyFlowFARPipeline", _anyflow_far_transformer, _anyflow_components,
         text_embeds("text_dim", negative_too=False), size=32, frames=5, output="frames"),
    # Prompts go in as token ids (the transformer embeds them); the long default system prompt is left out.
    ZooEntry("cosmos3_omni", "Cosmos3OmniPipeline", _cosmos3_omni_transformer, _cosmos3_omni_components, prompt_only,
         size=32, frames=5, output="video", call=dict(use_system_prompt=False)),
    # Prompt embeddings go in as given (mask_feature only trims encoder-made ones).
    ZooEntry("latte", "LattePipeline", _latte_transformer,
         lambda: dict(scheduler=diffusers.DDIMScheduler(), vae=vae4(), **nones("text_encoder", "tokenizer")),
         text_embeds("caption_channels"), size=32, frames=LATTE_FRAMES, frames_key="video_length", output="frames",
         call=dict(negative_prompt=None)),
]
