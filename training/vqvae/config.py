"""The depth VQ-VAE's configuration: one dataclass for both architectures, validated on creation.

``VQVAEConfig.aurora()`` is the reference model (AiT's depth tokenizer, which Aurora reuses);
``VQVAEConfig()`` the project's variant at the same scale; ``tiny_config()`` the CPU demo size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from training.config_keys import dataclass_kwargs

ARCHITECTURES = ("project", "aurora")
RESIZES = ("area", "nearest")  # cv2.INTER_AREA | PIL NEAREST (the reference's, custom.py:39)
INPUT_RANGES = ("zero_one", "minus_one_one")  # [0, 1] - 0.5 | Normalize(0.5, 0.5) (custom.py:41)



def default_hidden_channels(num_downsamples: int, base: int = 64, cap: int = 256) -> tuple[int, ...]:
    """Channels per downsampling level: ``base`` doubling at each level, capped at ``cap``."""
    return tuple(min(base * 2**i, cap) for i in range(num_downsamples))


@dataclass
class VQVAEConfig:
    """Architecture and quantizer settings; the defaults are the full-size AiT/Aurora model.

    ``hidden_channels`` lists the encoder's channels per downsampling level (the decoder
    mirrors them); left empty it becomes ``base_channels`` doubling per level, capped at
    ``max_channels``. A code is "dead" when it was picked fewer than ``dead_code_threshold``
    times over the last ``dead_code_window`` training steps; dead codes are restarted from
    random encoder outputs of the current batch.
    """

    image_size: int = 320
    in_channels: int = 1
    hidden_channels: tuple[int, ...] = ()
    base_channels: int = 64
    max_channels: int = 256
    num_downsamples: int = 5
    num_res_blocks: int = 2
    codebook_size: int = 128
    code_dim: int = 512
    commitment_weight: float = 0.25
    ema_decay: float = 0.99
    ema_eps: float = 1e-5
    dead_code_threshold: float = 1.0
    dead_code_window: int = 20
    kmeans_init: bool = True
    kmeans_iters: int = 10
    architecture: str = "project"
    resize: str = "area"
    input_range: str = "zero_one"
    sync_codebook: bool = True  # sum EMA statistics over data-parallel ranks (False: the reference's per-rank DDP)

    def __post_init__(self) -> None:
        if isinstance(self.num_downsamples, int) and self.num_downsamples >= 1 and not self.hidden_channels:
            self.hidden_channels = default_hidden_channels(self.num_downsamples, self.base_channels, self.max_channels)
        self.hidden_channels = tuple(int(c) for c in self.hidden_channels)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming every inconsistent setting."""
        problems: list[str] = []

        def need(ok: bool, msg: str) -> None:
            if not ok:
                problems.append(msg)

        need(self.num_downsamples >= 1, f"num_downsamples must be >= 1, got {self.num_downsamples}")
        need(self.image_size >= 1, f"image_size must be positive, got {self.image_size}")
        if self.num_downsamples >= 1 and self.image_size >= 1:
            factor = 2**self.num_downsamples
            need(
                self.image_size % factor == 0,
                f"image_size {self.image_size} is not divisible by 2**num_downsamples = {factor}",
            )
        need(self.in_channels >= 1, f"in_channels must be >= 1, got {self.in_channels}")
        need(
            len(self.hidden_channels) == self.num_downsamples,
            f"hidden_channels has {len(self.hidden_channels)} entries, need one per downsampling level "
            f"({self.num_downsamples})",
        )
        need(all(c >= 1 for c in self.hidden_channels), f"hidden_channels must be positive: {self.hidden_channels}")
        need(self.num_res_blocks >= 0, f"num_res_blocks must be >= 0, got {self.num_res_blocks}")
        need(
            2 <= self.codebook_size <= 32767,
            f"codebook_size must be in 2..32767 (codes are stored as int16), got {self.codebook_size}",
        )
        need(self.code_dim >= 1, f"code_dim must be >= 1, got {self.code_dim}")
        need(self.commitment_weight >= 0, f"commitment_weight must be >= 0, got {self.commitment_weight}")
        need(0.0 < self.ema_decay < 1.0, f"ema_decay must be in (0, 1), got {self.ema_decay}")
        need(self.ema_eps > 0, f"ema_eps must be > 0, got {self.ema_eps}")
        need(self.dead_code_threshold >= 0, f"dead_code_threshold must be >= 0, got {self.dead_code_threshold}")
        need(self.dead_code_window >= 1, f"dead_code_window must be >= 1, got {self.dead_code_window}")
        need(self.kmeans_iters >= 1, f"kmeans_iters must be >= 1, got {self.kmeans_iters}")
        need(self.architecture in ARCHITECTURES, f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        need(self.resize in RESIZES, f"resize must be one of {RESIZES}, got {self.resize!r}")
        need(self.input_range in INPUT_RANGES, f"input_range must be one of {INPUT_RANGES}, got {self.input_range!r}")
        if self.architecture == "aurora":
            # the reference can only express widths doubling from hidden_dim (VQVAE.py:245-248)
            doubling = tuple(self.hidden_channels[0] * 2**i for i in range(len(self.hidden_channels))) if self.hidden_channels else ()
            need(
                self.hidden_channels == doubling,
                f"architecture aurora needs hidden_channels doubling from the first (h, 2h, 4h, ...), got {self.hidden_channels}",
            )
            need(not self.kmeans_init, "kmeans_init applies to the project quantizer; set it false with architecture aurora")
            need(
                self.dead_code_threshold == 0,
                "dead-code restarts apply to the project quantizer; set dead_code_threshold 0 with architecture aurora",
            )
        if problems:
            raise ValueError("invalid VQVAEConfig: " + "; ".join(problems))

    @property
    def grid_size(self) -> int:
        """Side of the code grid: image_size / 2**num_downsamples (10 for Aurora)."""
        return self.image_size // 2**self.num_downsamples

    @property
    def codes_per_image(self) -> int:
        return self.grid_size**2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_channels"] = list(self.hidden_channels)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VQVAEConfig":
        values = dataclass_kwargs(cls, data, "VQVAEConfig")
        if "hidden_channels" in values:
            values["hidden_channels"] = tuple(values["hidden_channels"])
        return cls(**values)

    @classmethod
    def tiny(cls, **overrides: Any) -> "VQVAEConfig":
        """Small same-architecture config for tests and the demo: 80x80 input, 3 downsamples
        -> the same 10x10 grid and 128 codes as the full model, 64-dim codes."""
        values: dict[str, Any] = dict(
            image_size=80,
            num_downsamples=3,
            hidden_channels=(16, 32, 64),
            num_res_blocks=2,
            codebook_size=128,
            code_dim=64,
            dead_code_window=10,
        )
        values.update(overrides)
        return cls(**values)


    @classmethod
    def aurora(cls, **overrides: Any) -> "VQVAEConfig":
        """The reference model (ait_depth_vqvae.py:1-15): 320 px, hidden_dim 16 doubling over
        5 stride-2 convs (downsample_ratio 32), 2 ResBlock_v1, 128 codes of 512, EMA decay
        0.99, commitment 0.25, PIL NEAREST resize, inputs on [-1, 1]; 7,689,201 parameters."""
        values: dict[str, Any] = dict(
            image_size=320,
            num_downsamples=5,
            hidden_channels=(16, 32, 64, 128, 256),
            num_res_blocks=2,
            codebook_size=128,
            code_dim=512,
            commitment_weight=0.25,
            ema_decay=0.99,
            ema_eps=1e-5,
            dead_code_threshold=0.0,
            kmeans_init=False,
            architecture="aurora",
            resize="nearest",
            input_range="minus_one_one",
            # DDP with broadcast_buffers=False (train_depth_vqvae_dist.py:137): each rank's
            # codebook follows its own shard; one process: no difference
            sync_codebook=False,
        )
        values.update(overrides)
        return cls(**values)


def tiny_config(**overrides: Any) -> VQVAEConfig:
    """Shorthand for :meth:`VQVAEConfig.tiny`."""
    return VQVAEConfig.tiny(**overrides)
