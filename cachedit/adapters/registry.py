"""Which blocks to cache for each known diffusers pipeline, keyed by pipeline class name.

One entry per family (the transformer class decides the layout); every variant pipeline of the family (img2img,
inpaint, edit, image-to-video, Kontext, Fill, ControlNet, PAG, ...) and its Modular Diffusers pipelines
(``FluxModularPipeline``, ...) map to the same adapters. Families whose transformer transforms the streams between
two block lists (FLUX.2, Chroma, AuraFlow and Bria-FIBO concatenate text and image tokens) cache both lists: the
engine cuts a skipped span at list boundaries. Layouts that fit no list of blocks get a small adapter subclass next
to their entry (`cachedit.adapters.patches`: Motif-Video's decoder tail, Latte's spatial/temporal pairs).

``ADAPTERS`` (pipeline class name -> adapters) is the one lookup: ``adapters_for(pipe)`` walks the pipeline's class
hierarchy, ``adapters_for_class(name)`` takes a class name, ``supported_pipelines()`` lists them. A family's name only
labels its row in ``python -m runners.families``; which models and replicas prove a family is the zoo's business
(`cachedit.zoo.entries`).
"""

from __future__ import annotations

from .block_adapter import BlockAdapter
from .patches import DecoderTailAdapter, PairedLatteAdapter
from .patterns import ENCODER_HIDDEN_OUT, HIDDEN_AUDIO_OUT, HIDDEN_ENCODER_OUT, HIDDEN_OUT, UND_GEN_OUT, VIS_AUD_OUT
from .patterns import VALUES_OUT


def _one(*block_lists, transformer: str = "transformer") -> tuple[BlockAdapter, ...]:
    return (BlockAdapter(block_lists=tuple(block_lists), transformer=transformer),)


def _two(*block_lists) -> tuple[BlockAdapter, ...]:
    """Wan 2.2 A14B: a high-noise `transformer` and a low-noise `transformer_2` (empty on Wan 2.1 checkpoints)."""
    return (
        BlockAdapter(block_lists=tuple(block_lists), transformer="transformer"),
        BlockAdapter(block_lists=tuple(block_lists), transformer="transformer_2", optional=True),
    )


def _cond_uncond(*block_lists) -> tuple[BlockAdapter, ...]:
    """Ideogram 4's asymmetric CFG: a conditional `transformer` and an `unconditional_transformer`, one engine each."""
    return (
        BlockAdapter(block_lists=tuple(block_lists), transformer="transformer"),
        BlockAdapter(block_lists=tuple(block_lists), transformer="unconditional_transformer"),
    )


_MOTIF_VIDEO = (DecoderTailAdapter(block_lists=(
    ("transformer_blocks", HIDDEN_ENCODER_OUT), ("single_transformer_blocks:encoder", HIDDEN_ENCODER_OUT),
    ("single_transformer_blocks:decoder", HIDDEN_ENCODER_OUT),
)),)


_FLUX = _one(("transformer_blocks", ENCODER_HIDDEN_OUT), ("single_transformer_blocks", ENCODER_HIDDEN_OUT))
# Dual-stream blocks, then single-stream blocks on torch.cat([text, image]) built between the lists: the engine
# cuts the skipped span at the list boundary, so each part keeps a residual of its own shape.
_DUAL_THEN_CONCAT = _one(("transformer_blocks", ENCODER_HIDDEN_OUT), ("single_transformer_blocks", HIDDEN_OUT))
_DUAL_ENCODER_FIRST = _one(("transformer_blocks", ENCODER_HIDDEN_OUT))
_DUAL_HIDDEN_FIRST = _one(("transformer_blocks", HIDDEN_ENCODER_OUT))
_HUNYUAN_DUAL_SINGLE = _one(("transformer_blocks", HIDDEN_ENCODER_OUT), ("single_transformer_blocks", HIDDEN_ENCODER_OUT))
_TRANSFORMER_BLOCKS = _one(("transformer_blocks", HIDDEN_OUT))
_BLOCKS = _one(("blocks", HIDDEN_OUT))
_LAYERS = _one(("layers", HIDDEN_OUT))  # Lumina 2, Z-Image: the refiners before the joint `layers` always compute

# family -> (adapters, pipeline class names), the source of `ADAPTERS`; nothing looks adapters up by family name.
# Kept in the order of the list.
FAMILIES: dict[str, tuple[tuple[BlockAdapter, ...], tuple[str, ...]]] = {
    # Called with `sigmas=`, FLUX runs as many steps as sigmas, whatever `num_inference_steps` says: the lifecycle reads
    # the count from the scheduler at the call's first step.
    "flux": (_FLUX, (
        "FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline", "FluxFillPipeline", "FluxKontextPipeline",
        "FluxKontextInpaintPipeline", "FluxControlPipeline", "FluxControlImg2ImgPipeline", "FluxControlInpaintPipeline",
        "FluxControlNetPipeline", "FluxControlNetImg2ImgPipeline", "FluxControlNetInpaintPipeline",
        "FluxModularPipeline", "FluxKontextModularPipeline",
    )),
    "flux2": (_DUAL_THEN_CONCAT, (
        "Flux2Pipeline", "Flux2KleinPipeline", "Flux2KleinInpaintPipeline", "Flux2ModularPipeline",
        "Flux2KleinModularPipeline", "Flux2KleinBaseModularPipeline",
    )),
    "qwen_image": (_DUAL_ENCODER_FIRST, (
        "QwenImagePipeline", "QwenImageImg2ImgPipeline", "QwenImageInpaintPipeline", "QwenImageEditPipeline",
        "QwenImageEditInpaintPipeline", "QwenImageEditPlusPipeline", "QwenImageControlNetPipeline",
        "QwenImageControlNetInpaintPipeline", "QwenImageLayeredPipeline", "QwenImageModularPipeline",
        "QwenImageEditModularPipeline", "QwenImageEditPlusModularPipeline", "QwenImageLayeredModularPipeline",
    )),
    "wan": (_two(("blocks", HIDDEN_OUT)), (
        "WanPipeline", "WanImageToVideoPipeline", "WanVideoToVideoPipeline", "WanVACEPipeline", "LucyEditPipeline",
        "WanModularPipeline", "WanImage2VideoModularPipeline", "Wan22ModularPipeline", "Wan22Image2VideoModularPipeline",
        "Wan22VaceModularPipeline",
    )),
    "wan_single": (_BLOCKS, ("WanAnimatePipeline", "ChronoEditPipeline")),
    # Framepack runs one sampling loop per section within a call: its timesteps turn back, a fresh start.
    "hunyuan_video": (_HUNYUAN_DUAL_SINGLE, (
        "HunyuanVideoPipeline", "HunyuanVideoImageToVideoPipeline", "HunyuanSkyreelsImageToVideoPipeline",
        "HunyuanVideoFramepackPipeline",
    )),
    "hunyuan_video15": (_DUAL_HIDDEN_FIRST, (
        "HunyuanVideo15Pipeline", "HunyuanVideo15ImageToVideoPipeline", "HunyuanVideo15ModularPipeline",
    )),
    "hunyuandit": (_BLOCKS, ("HunyuanDiTPipeline", "HunyuanDiTControlNetPipeline", "HunyuanDiTPAGPipeline")),
    "hunyuan_image": (_HUNYUAN_DUAL_SINGLE, ("HunyuanImagePipeline", "HunyuanImageRefinerPipeline")),
    "cogvideox": (_DUAL_HIDDEN_FIRST, (
        "CogVideoXPipeline", "CogVideoXImageToVideoPipeline", "CogVideoXVideoToVideoPipeline",
        "CogVideoXFunControlPipeline",
    )),
    "cogview3": (_DUAL_HIDDEN_FIRST, ("CogView3PlusPipeline",)),
    "cogview4": (_DUAL_HIDDEN_FIRST, ("CogView4Pipeline", "CogView4ControlPipeline")),
    "ltx": (_TRANSFORMER_BLOCKS, (
        "LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline", "LTXI2VLongMultiPromptPipeline",
        "LTXModularPipeline",
    )),
    "mochi": (_DUAL_HIDDEN_FIRST, ("MochiPipeline",)),
    "allegro": (_TRANSFORMER_BLOCKS, ("AllegroPipeline",)),
    "sd3": (_DUAL_ENCODER_FIRST, (
        "StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "StableDiffusion3InpaintPipeline",
        "StableDiffusion3ControlNetPipeline", "StableDiffusion3ControlNetInpaintingPipeline",
        "StableDiffusion3PAGPipeline", "StableDiffusion3PAGImg2ImgPipeline", "StableDiffusion3ModularPipeline",
    )),
    # PixArt (like DiT) opens no cache_context: every call runs in the lifecycle's single branch `default`.
    "pixart": (_TRANSFORMER_BLOCKS, ("PixArtAlphaPipeline", "PixArtSigmaPipeline", "PixArtSigmaPAGPipeline")),
    "sana": (_TRANSFORMER_BLOCKS, (
        "SanaPipeline", "SanaSprintPipeline", "SanaSprintImg2ImgPipeline", "SanaControlNetPipeline", "SanaPAGPipeline",
    )),
    "sana_video": (_TRANSFORMER_BLOCKS, ("SanaVideoPipeline", "SanaImageToVideoPipeline")),
    "lumina2": (_LAYERS, ("Lumina2Pipeline",)),
    "auraflow": (_one(("joint_transformer_blocks", ENCODER_HIDDEN_OUT), ("single_transformer_blocks", HIDDEN_OUT)), ("AuraFlowPipeline",)),
    "chroma": (_DUAL_THEN_CONCAT, ("ChromaPipeline", "ChromaImg2ImgPipeline", "ChromaInpaintPipeline")),
    # HiDream's double blocks return (image, text) where the text is torch.cat([t5_and_last_llama, llama_layer_i]);
    # the transformer trims llama_layer_i back off, so a skipped span's text residual is right on the part kept. Each
    # single block sees torch.cat([image, text, llama_layer_i]), trimmed likewise. The list boundary cuts the span.
    "hidream": (_one(("double_stream_blocks", HIDDEN_ENCODER_OUT), ("single_stream_blocks", HIDDEN_OUT)),
                ("HiDreamImagePipeline",)),
    "dit": (_TRANSFORMER_BLOCKS, ("DiTPipeline",)),
    "cosmos": (_TRANSFORMER_BLOCKS, (
        "CosmosTextToWorldPipeline", "CosmosVideoToWorldPipeline", "Cosmos2TextToImagePipeline",
        "Cosmos2VideoToWorldPipeline", "Cosmos2_5_PredictBasePipeline", "Cosmos2_5_TransferPipeline",
        "AnimaModularPipeline",  # Anima runs the Cosmos transformer
    )),
    "skyreels_v2": (_BLOCKS, (
        "SkyReelsV2Pipeline", "SkyReelsV2ImageToVideoPipeline", "SkyReelsV2DiffusionForcingPipeline",
        "SkyReelsV2DiffusionForcingImageToVideoPipeline", "SkyReelsV2DiffusionForcingVideoToVideoPipeline",
    )),
    "omnigen": (_LAYERS, ("OmniGenPipeline",)),
    "easyanimate": (_DUAL_HIDDEN_FIRST, ("EasyAnimatePipeline", "EasyAnimateInpaintPipeline", "EasyAnimateControlPipeline")),
    # CogVideoX blocks; the face perceiver cross-attentions between them run outside the blocks, on every step.
    "consisid": (_DUAL_HIDDEN_FIRST, ("ConsisIDPipeline",)),
    "visualcloze": (_FLUX, ("VisualClozePipeline", "VisualClozeGenerationPipeline")),
    "bria": (_FLUX, ("BriaPipeline",)),
    "bria_fibo": (_DUAL_THEN_CONCAT, ("BriaFiboPipeline", "BriaFiboEditPipeline")),
    # The transformer takes a list of latents (one per image): the first stands for the batch.
    "z_image": (_LAYERS, (
        "ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline", "ZImageControlNetPipeline",
        "ZImageControlNetInpaintPipeline", "ZImageOmniPipeline", "ZImageModularPipeline",
    )),
    # The text encoder blocks run once per call before the visual blocks.
    "kandinsky5": (_one(("visual_transformer_blocks", HIDDEN_OUT)), (
        "Kandinsky5T2VPipeline", "Kandinsky5I2VPipeline", "Kandinsky5T2IPipeline", "Kandinsky5I2IPipeline",
    )),
    "stable_audio": (_TRANSFORMER_BLOCKS, ("StableAudioPipeline",)),
    "longcat_image": (_FLUX, ("LongCatImagePipeline", "LongCatImageEditPipeline")),
    "ovis_image": (_FLUX, ("OvisImagePipeline",)),
    "glm_image": (_DUAL_HIDDEN_FIRST, ("GlmImagePipeline",)),
    "prx": (_BLOCKS, ("PRXPipeline", "PRXPixelPipeline")),
    # One list of audio-video blocks returning (video, audio): the audio latents are carried and cached like a text
    # stream. The DFR pipelines' opt-in `video_tiles` run one call per tile per step without a cache_context: each
    # tile's call at a timestep gets a branch of its own (default, default#1, ...).
    "ltx2": (_one(("transformer_blocks", HIDDEN_AUDIO_OUT)), (
        "LTX2Pipeline", "LTX2ImageToVideoPipeline", "LTX2ConditionPipeline", "LTX2InContextPipeline", "LTX2HDRPipeline",
        "LTX2DFRPipeline", "LTX2DFRTemporalRefinePipeline", "LTX2ModularPipeline", "LTX25ModularPipeline",
        "EchoModularPipeline",  # Echo runs the LTX-2 transformer
    )),
    # Audio DiTs with one single-stream list (text enters by cross-attention). Stable Audio 3's blocks take the latent
    # stream (memory tokens first) as `hidden_states`; its inpaint variant adds `local_add_cond` inside the same blocks.
    "ace_step": (_LAYERS, ("AceStepPipeline",)),
    "stable_audio3": (_TRANSFORMER_BLOCKS, (
        "StableAudio3Pipeline", "StableAudio3AudioToAudioPipeline", "StableAudio3InpaintPipeline",
    )),
    # Guidance runs the uncond call separately without a cache_context: the second call at a timestep gets its own
    # branch (default#1), so the two passes never share a residual. Its timesteps rise (the lifecycle learns the loop's
    # direction).
    "longcat_audio": (_BLOCKS, ("LongCatAudioDiTPipeline",)),
    # Both JoyImage transformers (Edit: reference and target as items of one 3-D latent; Edit Plus: padded patch
    # sequences) run one list of double-stream blocks returning (image, text). Edit runs its negative prompt as a
    # second call without a cache_context (branch default#1); Edit Plus batches both prompts in one call.
    "joy_image_edit": (_one(("double_blocks", HIDDEN_ENCODER_OUT)),
                       ("JoyImageEditPipeline", "JoyImageEditPlusPipeline")),
    # The `noise_refiner` blocks carry only the image (and edit-context) tokens before the gist tokens join them, like
    # Lumina 2's refiners, so they always compute; the joint `layers` (some with text cross-attention) are cached.
    # The negative prompt runs as a second call without a cache_context: its own branch (default#1).
    "bria_fibo2": (_LAYERS, ("BriaFibo2Pipeline",)),
    "lumina_next": (_LAYERS, ("LuminaPipeline",)),
    # FLUX.2's layout. With a reference image, step 0 is an extract pass (reference + image tokens) that stores every
    # block's reference K/V; later steps take image tokens only and read those K/V. The extract pass is each call's
    # first transformer call (nothing cached yet), and the token count changes after it, which drops the cached
    # residuals, so no block is ever skipped while K/V are extracted; the call facts of Flux2Transformer2DModel
    # (`kv_cache_mode="extract"`, `call_facts.py`) also run it uncached and uncounted.
    "flux2_klein_kv": (_DUAL_THEN_CONCAT, ("Flux2KleinKVPipeline",)),
    # One single-stream list over torch.cat([image, text]), sequence-first ([S, B, H]); the block calls it `x`.
    "ernie_image": (_LAYERS, ("ErnieImagePipeline", "ErnieImageModularPipeline")),
    "ideogram4": (_cond_uncond(("layers", HIDDEN_OUT)), ("Ideogram4Pipeline", "Ideogram4ModularPipeline")),
    # Single stream over torch.cat([text, image]); the text-fusion blocks (nested in `text_fusion`) refine the prompt.
    "krea2": (_TRANSFORMER_BLOCKS, ("Krea2Pipeline", "Krea2ModularPipeline", "Krea2TurboModularPipeline")),
    # Single stream over text with the image tokens interleaved. With the default KV cache, step 0 runs the whole
    # sequence and stores the prefix K/V; later steps take the target image tokens only (the token count change
    # drops the cached residuals, so no block is skipped while K/V are extracted); the call facts run that step
    # uncached and uncounted (`call_facts.py`).
    "qwen_image21": (_TRANSFORMER_BLOCKS, (
        "QwenImage21Pipeline", "QwenImage21ModularPipeline", "QwenImage21TurboModularPipeline",
    )),
    # Image tokens only; text enters as per-block keys/values. The middle blocks are mixture-of-experts.
    "nucleus_moe_image": (_TRANSFORMER_BLOCKS, ("NucleusMoEImagePipeline",)),
    # Fused video/audio blocks return (video, audio); the video and audio text blocks before them encode the prompt.
    "kandinsky6": (_one(("visual_transformer_blocks", VIS_AUD_OUT)), ("Kandinsky6TI2VAPipeline",)),
    # The text-free video super-resolution transformer: single-stream blocks, one denoising loop per tile (each
    # tile's loop starts the branch afresh: its timesteps turn back).
    "kandinsky6_sr": (_one(("visual_transformer_blocks", HIDDEN_OUT)), ("Kandinsky6SRPipeline",)),
    # The history latents (short, mid, long) are concatenated before the blocks and run through them with the chunk.
    # Each chunk (and each pyramid stage) runs its own loop within one call: its timesteps turn back, a fresh start.
    "helios": (_BLOCKS, (
        "HeliosPipeline", "HeliosPyramidPipeline", "HeliosModularPipeline", "HeliosPyramidModularPipeline",
        "HeliosPyramidDistilledModularPipeline",
    )),
    # Dual-stream blocks, single-stream blocks, then the DDT decoder blocks that end `single_transformer_blocks`.
    "motif_video": (_MOTIF_VIDEO, ("MotifVideoPipeline", "MotifVideoImage2VideoPipeline")),
    # aMUSEd's U-ViT: the conv down/up blocks around `transformer_layers` always compute. Its masked-token loop calls
    # the transformer once per step on tokens that steps unmask progressively, so the latent stream changes slowly.
    "amused": (_one(("transformer_layers", HIDDEN_OUT)), (
        "AmusedPipeline", "AmusedImg2ImgPipeline", "AmusedInpaintPipeline",
    )),
    # Camera-controlled image-to-video: every block takes the camera rays (UCPE attention, Plücker embedding).
    "sana_wm": (_BLOCKS, ("SanaWMPipeline",)),
    # AnyFlow-FAR re-encodes each finished chunk to write every block's KV cache (`kv_cache_flag["is_cache_step"]`):
    # its transformer's call facts (`call_facts.py`) make that call run uncached and uncounted. Each chunk runs its
    # own loop within one call: its timesteps turn back, which starts the branch afresh.
    "anyflow": (_BLOCKS, ("AnyFlowPipeline", "AnyFlowFARPipeline")),
    # PriorTransformer (`prior`): a CLIP-image-embedding (Kandinsky, unCLIP) or 3D-latent (Shap-E) denoiser whose
    # blocks run on [text, projection, time, latent, prd] tokens. In the unCLIP pipelines only the prior is cached.
    "prior": (_one(("transformer_blocks", HIDDEN_OUT), transformer="prior"), (
        "KandinskyPriorPipeline", "KandinskyV22PriorPipeline", "KandinskyV22PriorEmb2EmbPipeline", "ShapEPipeline",
        "ShapEImg2ImgPipeline", "UnCLIPPipeline", "StableUnCLIPPipeline",
    )),
    # Modular-only families: diffusers 0.42.1 has no classic pipeline for them; modular-only replicas in
    # tests/test_modular.py prove them, and the runner drives FLUX.3 (`model=flux3`, conf/model/flux3.yaml).
    # FLUX.3: per-mode blocks (text, image, reference image), then joint single blocks over [text, image, reference].
    # The image mode blocks and the joint blocks carry the latent stream; the text and reference mode blocks run at
    # timestep 0 (only the distilled model's target timestep varies) and always compute. The list boundary cuts a
    # skipped span where the streams join.
    "flux3": (_one(("mode_blocks.image", HIDDEN_OUT), ("single_transformer_blocks", ENCODER_HIDDEN_OUT)), (
        "Flux3ModularPipeline", "Flux3DistilledModularPipeline",
    )),
    # One packed sequence of text, conditioning, audio and video rows through one list. A workflow loads one of the two
    # denoisers: `transformer` (t2va, fl2va) or `transformer_ref` (ref2va); each runs once per step (no guidance).
    "minimax_h3": (tuple(
        BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),), transformer=name, optional=True)
        for name in ("transformer", "transformer_ref")
    ), ("MiniMaxH3ModularPipeline",)),
    # Single-stream blocks over [timestep token, latents]. Each 200-frame window of a longer song runs its own loop
    # within one call: its timesteps turn back, which starts the branch afresh (warmup, step count, no cache).
    "minimax_music3": (_TRANSFORMER_BLOCKS, ("MiniMaxMusic3ModularPipeline",)),
    # Per segment, one reference pass (`kv_cache_mode="extract"`, reference tokens only: a different token count, so
    # it drops the cached residuals and is never skipped) stores every block's K/V, then the denoising passes read
    # them; the call facts run it uncached and uncounted (`call_facts.py`). The unconditional pass leaves out block 9.
    "wan_animate2": (_BLOCKS, ("WanAnimate2ModularPipeline", "WanAnimate2DistilledModularPipeline")),
    # The text (understanding) and the packed vision/sound/action (generation) sequences run through every layer.
    "cosmos3_omni": (_one(("layers", UND_GEN_OUT)), (
        "Cosmos3OmniPipeline", "Cosmos3OmniModularPipeline", "Cosmos3DistilledModularPipeline",
    )),
    # Spatial and temporal blocks alternate with reshapes between them: the spatial list is cached, each spatial
    # block running its temporal partner while the cache is on (cachedit/adapters/patches/latte.py).
    "latte": ((PairedLatteAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),)),), ("LattePipeline",)),
    # The discrete Transformer2DModel: BasicTransformerBlocks on embedded VQ tokens (text by cross-attention); its
    # output head turns the last hidden states into log p(x_0) over the codebook, so the cache works on the blocks'
    # hidden states as usual. The pipeline batches the learned unconditional embeddings into the same call.
    "vq_diffusion": (_TRANSFORMER_BLOCKS, ("VQDiffusionPipeline",)),
    # A protein-structure model: trunk layers carry the token stream `values`; the pair stream they read is updated
    # between layers (`pair_update_layers`, not blocks) and keeps running. Each denoising step runs the whole list
    # `recycle_depth` times inside one transformer call.
    "rfd4_proteina": (_one(("transformer_layers", VALUES_OUT)), ("RFD4ProteinaPipeline",)),
    "tiny_dit": (_TRANSFORMER_BLOCKS, ("TinyDiTPipeline",)),
}

ADAPTERS: dict[str, tuple[BlockAdapter, ...]] = {
    pipeline: adapters for adapters, pipelines in FAMILIES.values() for pipeline in pipelines
}


def supported_pipelines() -> list[str]:
    """Pipeline class names that `enable_cache` adapts without a BlockAdapter."""
    return sorted(ADAPTERS)


def adapters_for_class(name: str) -> tuple[BlockAdapter, ...]:
    """The registered adapters for the pipeline class called `name` (no base-class lookup: a name has no bases)."""
    if name not in ADAPTERS:
        raise ValueError(_unsupported(name))
    return ADAPTERS[name]


def adapters_for(pipe) -> tuple[BlockAdapter, ...]:
    """The registered adapters for `pipe`'s class (or its nearest registered base class)."""
    for cls in type(pipe).__mro__:
        if cls.__name__ in ADAPTERS:
            return ADAPTERS[cls.__name__]
    raise ValueError(_unsupported(type(pipe).__name__))


def _unsupported(name: str) -> str:
    return (
        f"{name} is not a supported pipeline. Supported: {', '.join(supported_pipelines())}. "
        "For any other pipeline, describe its blocks: "
        "`cachedit.enable_cache(pipe, config, adapters=[cachedit.BlockAdapter(block_lists=(('transformer_blocks', "
        "cachedit.patterns.HIDDEN_OUT),))])`, or let cachedit find them: "
        "`adapters=[cachedit.BlockAdapter(block_lists='auto')]`."
    )
