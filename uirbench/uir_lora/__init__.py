"""UIR-LoRA: frozen one-step generative backbone + per-degradation LoRAs + router.

Importing the package registers the ``uir-lora`` model; heavy dependencies (diffusers, peft,
transformers) load only when a model is built or trained.
"""

import logging

# peft imports bitsandbytes when it is installed (pyiqa depends on it); on CPU its 4-bit kernel loader then logs a
# warning about the optional `kernels` package on every run. UIR-LoRA never quantises: that logger's warnings are noise.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

from uirbench.uir_lora import model  # noqa: E402, F401  (registers "uir-lora" in MODELS)
