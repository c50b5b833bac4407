"""UIR-LoRA: frozen one-step generative backbone + per-degradation LoRAs + router.

Importing the package registers the ``uir-lora`` model; heavy dependencies (diffusers, peft,
transformers) load only when a model is built or trained.
"""

from uirbench.uir_lora import model  # noqa: F401  (registers "uir-lora" in MODELS)
