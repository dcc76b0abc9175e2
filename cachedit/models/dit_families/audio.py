"""Audio families on their offline replicas: a second of latents at a tiny sample rate."""

from __future__ import annotations

import diffusers

from ._common import TOKENS, Spec, _emb, _mask, _none


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
        **_none("text_encoder", "tokenizer"))


def _stable_audio_embeds(pipe, prompt, negative):
    d = pipe.projection_model.config.text_encoder_dim  # T5's width, projected by the pipeline's projection model
    return dict(prompt_embeds=_emb(prompt, 1, TOKENS, d), negative_prompt_embeds=_emb(negative, 1, TOKENS, d),
                attention_mask=_mask(), negative_attention_mask=_mask())


SPECS: list[Spec] = [
    # Audio: latents of 32 steps of 8 samples at 256 Hz, one second; the call takes a duration, not a size.
    Spec("stable_audio", "StableAudioPipeline", _stable_audio_transformer, _stable_audio_components,
         _stable_audio_embeds, takes_size=False, output="audios"),
]
