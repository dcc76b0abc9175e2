"""Audio families on their offline replicas: a second of latents at a tiny sample rate."""

from __future__ import annotations

import diffusers

from ..zoo_entry import ZooEntry
from .parts import PROMPT_CHARS, TOKENS, char_tokenizer, emb, mask, nones


def _stable_audio_transformer(**o):
    return diffusers.StableAudioDiTModel(**{**dict(
        sample_size=32, in_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        num_key_value_attention_heads=1, out_channels=4, cross_attention_dim=32, time_proj_dim=16,
        global_states_input_dim=64, cross_attention_input_dim=32), **o})


def _stable_audio_components():
    # The hub checkpoint's CosineDPMSolverMultistepScheduler needs torchsde; the EDM DPM-Solver is its noise-free kin.
    return dict(
        scheduler=diffusers.EDMDPMSolverMultistepScheduler(
            solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"),
        vae=diffusers.AutoencoderOobleck(
            encoder_hidden_size=8, downsampling_ratios=[2, 4], channel_multiples=[1, 2], decoder_channels=8,
            decoder_input_channels=4, audio_channels=2, sampling_rate=256),
        projection_model=diffusers.StableAudioProjectionModel(
            text_encoder_dim=32, conditioning_dim=32, min_value=0, max_value=512),
        **nones("text_encoder", "tokenizer"))


def _stable_audio_embeds(pipe, prompt, negative):
    d = pipe.projection_model.config.text_encoder_dim  # T5's width, projected by the pipeline's projection model
    return dict(prompt_embeds=emb(prompt, 1, TOKENS, d), negative_prompt_embeds=emb(negative, 1, TOKENS, d),
                attention_mask=mask(), negative_attention_mask=mask())


def _ace_step_transformer(**o):
    # Its input is cat([source latents, chunk mask, noisy latents]): three times the VAE's 4 latent channels.
    return diffusers.AceStepTransformer1DModel(**{**dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=10, num_attention_heads=2, num_key_value_heads=1,
        head_dim=16, in_channels=12, audio_acoustic_hidden_dim=4, patch_size=2, sliding_window=4), **o})


def _ace_step_components():
    # The call takes no prompt embeddings (it runs the text through the encoder and the lyrics through its embedding
    # table): a tiny random Qwen3 (the checkpoint's Qwen3-Embedding). The condition encoder's silence latent stays
    # zeros (the converter fills it from the checkpoint). The scheduler reads ACE-Step's own sigmas in [0, 1].
    from transformers import Qwen3Config, Qwen3Model

    text_encoder = Qwen3Model(Qwen3Config(
        vocab_size=97, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=256)).eval()
    return dict(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0),
        vae=diffusers.AutoencoderOobleck(
            encoder_hidden_size=8, downsampling_ratios=[2, 4], channel_multiples=[1, 2], decoder_channels=8,
            decoder_input_channels=4, audio_channels=2, sampling_rate=256),
        condition_encoder=diffusers.AceStepConditionEncoder(
            hidden_size=32, intermediate_size=64, text_hidden_dim=16, timbre_hidden_dim=4,
            num_lyric_encoder_hidden_layers=1, num_timbre_encoder_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, head_dim=16, sliding_window=4),
        text_encoder=text_encoder, tokenizer=char_tokenizer(PROMPT_CHARS))


def _ace_step_embeds(pipe, prompt, negative):
    # Guidance uses the condition encoder's learned null embedding, not a negative prompt.
    return dict(prompt=prompt, max_text_length=PROMPT_CHARS, max_lyric_length=PROMPT_CHARS)


def _stable_audio3_transformer(**o):
    # local_add_cond_dim: the inpainting mask plus the masked latents (1 + the VAE's 8 latent channels).
    return diffusers.StableAudio3DiTModel(**{**dict(
        io_channels=8, embed_dim=32, depth=10, num_heads=2, cond_token_dim=32, global_cond_dim=32,
        local_add_cond_dim=9, timestep_features_dim=16, ff_mult=2.0, num_memory_tokens=4), **o})


def _stable_audio3_components():
    # The distilled checkpoint's ping-pong sampler (stochastic re-noise, seeded by the call's generator); the DiT
    # takes timesteps in [0, 1].
    return dict(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, stochastic_sampling=True),
        vae=diffusers.AutoencoderSAME(
            patch_size=4, encoder_channels=8, encoder_c_mults=[2], encoder_strides=[2], encoder_transformer_depths=[1],
            latent_dim=8, dim_heads=8, ff_mult=2, sampling_rate=256),
        duration_embedder=diffusers.StableAudio3DurationEmbedder(output_dim=32, fourier_dim=16),
        **nones("text_encoder", "tokenizer"))


def _stable_audio3_embeds(pipe, prompt, negative):
    d = pipe.transformer.config.cond_token_dim  # T5Gemma's width
    return dict(prompt_embeds=emb(prompt, 1, TOKENS, d), encoder_attention_mask=mask(),
                negative_prompt_embeds=emb(negative, 1, TOKENS, d), negative_encoder_attention_mask=mask())


def _longcat_audio_transformer(**o):
    return diffusers.LongCatAudioDiTTransformer(**{**dict(
        dit_dim=32, dit_depth=10, dit_heads=2, dit_text_dim=32, latent_dim=8), **o})


def _longcat_audio_components():
    # The call takes no prompt embeddings: a tiny random UMT5 encoder.
    from transformers import UMT5Config, UMT5EncoderModel

    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=97, d_model=32, d_ff=37, d_kv=16, num_layers=1, num_heads=2)).eval()
    return dict(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=1.0, invert_sigmas=True),  # the pipeline's default
        vae=diffusers.LongCatAudioDiTVae(
            channels=4, c_mults=[1, 2], strides=[2, 4], latent_dim=8, encoder_latent_dim=16, downsampling_ratio=8,
            sample_rate=256),
        text_encoder=text_encoder, tokenizer=char_tokenizer(PROMPT_CHARS))


def _longcat_audio_embeds(pipe, prompt, negative):
    # An empty negative prompt tokenizes to nothing; None gives the pipeline's own zero unconditional embeddings.
    return dict(prompt=prompt, negative_prompt=negative or None)


ENTRIES: list[ZooEntry] = [
    # Audio: latents of 32 steps of 8 samples at 256 Hz, one second; the call takes a duration, not a size.
    ZooEntry("stable_audio", "StableAudioPipeline", _stable_audio_transformer, _stable_audio_components,
         _stable_audio_embeds, takes_size=False, output="audios"),
    # One second of stereo at 256 Hz: 32 latent frames, 16 tokens after the DiT's 2x patching.
    ZooEntry("ace_step", "AceStepPipeline", _ace_step_transformer, _ace_step_components, _ace_step_embeds,
         takes_size=False, call=dict(audio_duration=1.0), output="audios"),
    # One second of stereo at 256 Hz: 32 latent frames behind the DiT's 4 memory tokens.
    ZooEntry("stable_audio3", "StableAudio3Pipeline", _stable_audio3_transformer, _stable_audio3_components,
         _stable_audio3_embeds, takes_size=False, call=dict(duration=1.0), output="audios"),
    # One second of mono at 256 Hz: 32 latent frames. The output projection and AdaLN are zero-initialised.
    ZooEntry("longcat_audio", "LongCatAudioDiTPipeline", _longcat_audio_transformer, _longcat_audio_components,
         _longcat_audio_embeds, takes_size=False, call=dict(audio_duration_s=1.0), output="audios",
         randomize_zeros=True),
]
