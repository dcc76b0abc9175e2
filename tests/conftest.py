import os
import tempfile

import pytest
import torch

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# fits kept between processes (the digit classifier, `cachedit.zoo.disk_once`): shared by this run's runner
# subprocesses, fitted once per run, nothing written to the home directory
_FIT_CACHE = tempfile.TemporaryDirectory(prefix="cachedit-fits-")
os.environ.setdefault("CACHEDIT_CACHE_DIR", _FIT_CACHE.name)
torch.set_num_threads(2)

from cachedit.zoo.model_config import ModelConfig, ModelSource  # noqa: E402
from cachedit.zoo.entries import get_entry  # noqa: E402
from cachedit.harness.pipelines import load_pipeline  # noqa: E402

# Small enough that a whole denoising run takes well under a second on 2 cores.
REPLICA_CALLS = {
    "flux": dict(height=64, width=64, num_inference_steps=8, guidance_scale=3.5),
    "pixart_alpha": dict(height=64, width=64, num_inference_steps=8, guidance_scale=4.5),
    "tiny_dit": dict(num_inference_steps=8, guidance_scale=2.0, class_labels=[3, 7]),
}


class Replica:
    """A replica pipeline plus the call that generates with it (seeded), returning latents where it can."""

    def __init__(self, name: str, **model_kwargs) -> None:
        self.model = ModelConfig(name=name, source=ModelSource.replica, torch_dtype="float32", **model_kwargs)
        self.pipe = load_pipeline(self.model)
        self.pipe.set_progress_bar_config(disable=True)
        entry = get_entry(name)
        self.inputs = entry.inputs(self.pipe, self.model)
        self.output = entry.output  # video pipelines return `.frames`
        # Latents are what the transformer produces; skipping the VAE decode keeps the tests fast. DiT cannot
        # return latents (nor can Kandinsky 6 SR, which blends decoded tiles), and the tiny DiT works in pixel space.
        self.output_type = {"dit": "np", "tiny_dit": "pt", "kandinsky6_sr": "pt", "vq_diffusion": "np",
                            "rfd4_proteina": "pt"}.get(  # RFD4-Proteina takes "pt" or "np" (coordinates) only
            name, "latent")  # VQ-Diffusion always decodes its tokens: "np" or "pil" only
        self._baseline = None

    def __call__(self, seed: int = 0, **overrides) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        kwargs = {**self.inputs, "output_type": self.output_type, **overrides}
        result = self.pipe(**kwargs, generator=generator)
        return torch.as_tensor(result if "output" in kwargs else getattr(result, self.output))  # modular: the value

    def baseline(self) -> torch.Tensor:
        """The uncached output at seed 0 (computed once per session)."""
        if self._baseline is None:
            self._baseline = self()
        return self._baseline


@pytest.fixture(scope="session")
def replicas():
    cache: dict[str, Replica] = {}

    def get(name: str) -> Replica:
        if name not in cache:
            cache[name] = Replica(name, **REPLICA_CALLS[name])
        return cache[name]

    return get
