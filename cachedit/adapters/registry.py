"""Which blocks to cache for each known diffusers pipeline, keyed by pipeline class name.

One entry per family (the transformer class decides the layout); every variant pipeline of the family (img2img,
inpaint, edit, image-to-video, Kontext, Fill, ControlNet, PAG, ...) maps to the same adapters. Families whose
transformer transforms the streams between two block lists (FLUX.2, Chroma, AuraFlow and Bria-FIBO concatenate
text and image tokens) cache both lists: the engine cuts a skipped span at list boundaries. ``FAMILY_OF`` names each pipeline's family; ``supported_pipelines()``
lists them.
"""

from __future__ import annotations

from .block_adapter import BlockAdapter
from .patterns import ENCODER_HIDDEN_OUT, HIDDEN_ENCODER_OUT, HIDDEN_OUT


def _one(*block_lists, transformer: str = "transformer") -> tuple[BlockAdapter, ...]:
    return (BlockAdapter(block_lists=tuple(block_lists), transformer=transformer),)


def _two(*block_lists) -> tuple[BlockAdapter, ...]:
    """Wan 2.2 A14B: a high-noise `transformer` and a low-noise `transformer_2` (empty on Wan 2.1 checkpoints)."""
    return (
        BlockAdapter(block_lists=tuple(block_lists), transformer="transformer"),
        BlockAdapter(block_lists=tuple(block_lists), transformer="transformer_2", optional=True),
    )


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

# family -> (adapters, pipeline class names). Kept in the order of the list.
FAMILIES: dict[str, tuple[tuple[BlockAdapter, ...], tuple[str, ...]]] = {
    "flux": (_FLUX, (
        "FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline", "FluxFillPipeline", "FluxKontextPipeline",
        "FluxKontextInpaintPipeline", "FluxControlPipeline", "FluxControlImg2ImgPipeline", "FluxControlInpaintPipeline",
        "FluxControlNetPipeline", "FluxControlNetImg2ImgPipeline", "FluxControlNetInpaintPipeline",
    )),
    "flux2": (_DUAL_THEN_CONCAT, ("Flux2Pipeline", "Flux2KleinPipeline", "Flux2KleinInpaintPipeline")),
    "qwen_image": (_DUAL_ENCODER_FIRST, (
        "QwenImagePipeline", "QwenImageImg2ImgPipeline", "QwenImageInpaintPipeline", "QwenImageEditPipeline",
        "QwenImageEditInpaintPipeline", "QwenImageEditPlusPipeline", "QwenImageControlNetPipeline",
        "QwenImageControlNetInpaintPipeline", "QwenImageLayeredPipeline",
    )),
    "wan": (_two(("blocks", HIDDEN_OUT)), (
        "WanPipeline", "WanImageToVideoPipeline", "WanVideoToVideoPipeline", "WanVACEPipeline", "LucyEditPipeline",
    )),
    "wan_single": (_BLOCKS, ("WanAnimatePipeline", "ChronoEditPipeline")),
    "hunyuan_video": (_HUNYUAN_DUAL_SINGLE, (
        "HunyuanVideoPipeline", "HunyuanVideoImageToVideoPipeline", "HunyuanSkyreelsImageToVideoPipeline",
        "HunyuanVideoFramepackPipeline",
    )),
    "hunyuan_video15": (_DUAL_HIDDEN_FIRST, ("HunyuanVideo15Pipeline", "HunyuanVideo15ImageToVideoPipeline")),
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
    )),
    "mochi": (_DUAL_HIDDEN_FIRST, ("MochiPipeline",)),
    "allegro": (_TRANSFORMER_BLOCKS, ("AllegroPipeline",)),
    "sd3": (_DUAL_ENCODER_FIRST, (
        "StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "StableDiffusion3InpaintPipeline",
        "StableDiffusion3ControlNetPipeline", "StableDiffusion3ControlNetInpaintingPipeline",
        "StableDiffusion3PAGPipeline", "StableDiffusion3PAGImg2ImgPipeline",
    )),
    "pixart": (_TRANSFORMER_BLOCKS, ("PixArtAlphaPipeline", "PixArtSigmaPipeline", "PixArtSigmaPAGPipeline")),
    "sana": (_TRANSFORMER_BLOCKS, (
        "SanaPipeline", "SanaSprintPipeline", "SanaSprintImg2ImgPipeline", "SanaControlNetPipeline", "SanaPAGPipeline",
    )),
    "sana_video": (_TRANSFORMER_BLOCKS, ("SanaVideoPipeline", "SanaImageToVideoPipeline")),
    "lumina2": (_LAYERS, ("Lumina2Pipeline",)),
    "auraflow": (_one(("joint_transformer_blocks", ENCODER_HIDDEN_OUT), ("single_transformer_blocks", HIDDEN_OUT)), ("AuraFlowPipeline",)),
    "chroma": (_DUAL_THEN_CONCAT, ("ChromaPipeline", "ChromaImg2ImgPipeline", "ChromaInpaintPipeline")),
    # Each HiDream single block sees torch.cat([image, llama_layer_i]) and the transformer trims the text back off.
    "hidream": (_one(("single_stream_blocks", HIDDEN_OUT)), ("HiDreamImagePipeline",)),
    "dit": (_TRANSFORMER_BLOCKS, ("DiTPipeline",)),
    "cosmos": (_TRANSFORMER_BLOCKS, (
        "CosmosTextToWorldPipeline", "CosmosVideoToWorldPipeline", "Cosmos2TextToImagePipeline",
        "Cosmos2VideoToWorldPipeline", "Cosmos2_5_PredictBasePipeline", "Cosmos2_5_TransferPipeline",
    )),
    "skyreels_v2": (_BLOCKS, (
        "SkyReelsV2Pipeline", "SkyReelsV2ImageToVideoPipeline", "SkyReelsV2DiffusionForcingPipeline",
        "SkyReelsV2DiffusionForcingImageToVideoPipeline", "SkyReelsV2DiffusionForcingVideoToVideoPipeline",
    )),
    "omnigen": (_LAYERS, ("OmniGenPipeline",)),
    "easyanimate": (_DUAL_HIDDEN_FIRST, ("EasyAnimatePipeline", "EasyAnimateInpaintPipeline", "EasyAnimateControlPipeline")),
    "consisid": (_DUAL_HIDDEN_FIRST, ("ConsisIDPipeline",)),
    "visualcloze": (_FLUX, ("VisualClozePipeline", "VisualClozeGenerationPipeline")),
    "bria": (_FLUX, ("BriaPipeline",)),
    "bria_fibo": (_DUAL_THEN_CONCAT, ("BriaFiboPipeline", "BriaFiboEditPipeline")),
    "z_image": (_LAYERS, (
        "ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline", "ZImageControlNetPipeline",
        "ZImageControlNetInpaintPipeline", "ZImageOmniPipeline",
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
    "tiny_dit": (_TRANSFORMER_BLOCKS, ("TinyDiTPipeline",)),
}

# Registry families whose runnable replicas (`cachedit.models.families.FAMILIES`) go by other names: each listed
# family runs one of this registry family's pipeline classes, so the family tests prove it.
PROVEN_BY: dict[str, tuple[str, ...]] = {
    "pixart": ("pixart_alpha", "pixart_sigma"),  # PixArtAlphaPipeline, PixArtSigmaPipeline
    # Not an alias of `wan`: its own transformer classes. ChronoEditPipeline (ChronoEditTransformer3DModel) has a
    # replica; WanAnimatePipeline (WanAnimateTransformer3DModel, pose and face videos) shares the adapter but has none.
    "wan_single": ("chronoedit",),
}

# Registry families with no offline replica, and why. tests/test_families.py checks that every other registry family
# is proven by a replica (under its own name or through PROVEN_BY), so none goes untested silently.
UNPROVEN: dict[str, str] = {
    "cosmos": "needs torchvision (CosmosTransformer3DModel resizes its padding mask with torchvision.transforms, and "
              "the pipelines build a cosmos_guardrail safety checker); torchvision has no CPU build here",
    "omnigen": "needs torchvision (OmniGenPipeline's multimodal processor uses torchvision.transforms); torchvision has "
               "no CPU build here",
    "consisid": "needs OpenCV (diffusers exports ConsisIDPipeline only with cv2 installed, and its face pipeline uses "
                "cv2), which is not installed",
}

ADAPTERS: dict[str, tuple[BlockAdapter, ...]] = {
    pipeline: adapters for adapters, pipelines in FAMILIES.values() for pipeline in pipelines
}
FAMILY_OF: dict[str, str] = {pipeline: family for family, (_, pipelines) in FAMILIES.items() for pipeline in pipelines}


def supported_pipelines() -> list[str]:
    """Pipeline class names that `enable_cache` adapts without a BlockAdapter."""
    return sorted(ADAPTERS)


def adapters_for(pipe) -> tuple[BlockAdapter, ...]:
    """The registered adapters for `pipe`'s class (or its nearest registered base class)."""
    for cls in type(pipe).__mro__:
        if cls.__name__ in ADAPTERS:
            return ADAPTERS[cls.__name__]
    raise ValueError(
        f"{type(pipe).__name__} is not a supported pipeline. Supported: {', '.join(supported_pipelines())}. "
        "For any other pipeline, describe its blocks: "
        "`cachedit.enable_cache(pipe, config, adapters=[cachedit.BlockAdapter(block_lists=(('transformer_blocks', "
        "cachedit.patterns.HIDDEN_OUT),))])`, or let cachedit find them: "
        "`adapters=[cachedit.BlockAdapter(block_lists='auto')]`."
    )
