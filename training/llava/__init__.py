"""LoRA fine-tune of LLaVA with Aurora's perception-token vocabulary (pure torch, no Dagster)."""
