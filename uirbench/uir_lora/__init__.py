"""UIR-LoRA: frozen one-step generative backbone + per-degradation LoRAs + router."""
