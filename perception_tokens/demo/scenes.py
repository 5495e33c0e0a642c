"""Procedural indoor scenes with exact depth, boxes and masks (the demo data's ground truth).

A pinhole camera, tilted down a little, stands in a box-shaped room (floor, ceiling,
back and side walls). 3-7 objects of six LVIS/COCO categories sit on the floor at
different distances. Every pixel is ray-cast analytically against planes, spheres,
axis-aligned boxes and vertical cylinders, so ``depth`` is the exact metric z-depth
(distance along the optical axis, metres; larger = farther) and occlusion comes from a
z-buffer. Everything is numpy-vectorised and primitives are only traced inside their
projected screen rectangle, which keeps a 320x240 scene at a few milliseconds.

All randomness comes from the ``numpy.random.Generator`` passed in, so a scene is a
pure function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .shapes import CATEGORIES, FOOTPRINT, Camera, category_primitives, intersect, screen_window

__all__ = [
    "CATEGORIES",
    "COLORS",
    "SURFACE_FLOOR",
    "SURFACE_WALL",
    "SURFACE_CEILING",
    "SURFACE_OBJECT",
    "SceneObject",
    "Scene",
    "generate_scene",
    "render_layout",
    "PlacedObject",
    "position_word",
]


COLORS: dict[str, tuple[int, int, int]] = {
    "red": (205, 35, 35),
    "green": (40, 165, 60),
    "blue": (40, 75, 210),
    "yellow": (235, 205, 40),
    "white": (238, 238, 238),
    "black": (28, 28, 30),
}

# Background surface codes in ``Scene.surface``.
SURFACE_FLOOR = 1
SURFACE_WALL = 2
SURFACE_CEILING = 3
SURFACE_OBJECT = 4

_LIGHT = np.array([-0.45, -1.0, -0.55], dtype=np.float32)
_LIGHT /= np.linalg.norm(_LIGHT)


@dataclass
class SceneObject:
    object_index: int  # index in Scene.objects (and value in Scene.instance_map)
    category: str  # one of CATEGORIES
    color_name: str  # key of COLORS
    bbox_xywh: tuple[float, float, float, float]  # visible part, pixel-edge coordinates
    mask: np.ndarray  # bool HxW, visible pixels
    mean_depth: float  # mean metric depth over the visible pixels
    position: str  # "left" / "middle" / "right" of the image, from the box centre
    size_scale: float = 1.0  # relative to the category's base size
    center_xz: tuple[float, float] = (0.0, 0.0)  # world floor position (metres)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class Scene:
    rgb: np.ndarray  # uint8 HxWx3
    depth: np.ndarray  # float32 HxW, metres, > 0
    objects: list[SceneObject]
    surface: np.ndarray  # uint8 HxW: SURFACE_* code per pixel
    instance_map: np.ndarray  # int16 HxW: object_index, -1 for background
    camera: dict = field(default_factory=dict)  # focal, cx, cy, pitch_deg, height_m

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def position_word(center_x: float, width: int) -> str:
    """Horizontal thirds of the image: "left", "middle" or "right"."""
    if center_x < width / 3.0:
        return "left"
    if center_x > 2.0 * width / 3.0:
        return "right"
    return "middle"


# ----------------------------------------------------------------------------- scene


@dataclass
class PlacedObject:
    """An object standing on the floor: world position (x right, z forward, metres)."""

    category: str
    color_name: str
    x: float
    z: float
    scale: float = 1.0


def _sample_layout(rng: np.random.Generator, cam: Camera, room: dict, n: int) -> list[PlacedObject]:
    tan_half = cam.width / 2.0 / cam.focal
    placed: list[PlacedObject] = []
    color_names = list(COLORS)
    for _ in range(n * 25):
        if len(placed) == n:
            break
        cat = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        scale = float(rng.uniform(0.75, 1.35))
        z = float(rng.uniform(2.3, room["back"] - 1.0))
        half = tan_half * z * 0.85
        x = float(rng.uniform(max(-half, -room["left"] + 0.5), min(half, room["right"] - 0.5)))
        foot = FOOTPRINT[cat] * scale
        if any(math.hypot(x - p.x, z - p.z) < foot + FOOTPRINT[p.category] * p.scale + 0.08 for p in placed):
            continue
        # the object's base must be in the picture (it stands on the floor we can see)
        _, vb, _ = cam.project(np.array([[x, room["cam_h"], z]]))
        if vb[0] > cam.height - 4:
            continue
        color = color_names[int(rng.integers(len(color_names)))]
        placed.append(PlacedObject(cat, color, x, z, scale))
    return placed


_BG_FLOOR, _BG_CEILING, _BG_BACK, _BG_SIDE = 0, 1, 2, 3  # palette rows; objects follow


@dataclass
class _Background:
    depth: np.ndarray  # float32 HxW
    code: np.ndarray  # int16 HxW palette row
    factor: np.ndarray  # float32 HxW brightness (texture)
    palette: np.ndarray  # float32 4x3


def _background(cam: Camera, rays, room: dict) -> _Background:
    """Depth, surface and texture of the empty room (computed once per scene)."""
    dx, dy, dz = rays
    H, W = cam.height, cam.width
    inf = np.float32(np.inf)

    def plane(num: float, d: np.ndarray, positive: bool) -> np.ndarray:
        out = np.full((H, W), inf, dtype=np.float32)
        np.divide(np.float32(num), d, out=out, where=(d > 0) if positive else (d < 0))
        return out

    depth = plane(room["back"], dz, True)
    code = np.full((H, W), _BG_BACK, dtype=np.int16)
    for t, c in (
        (plane(room["cam_h"], dy, True), _BG_FLOOR),
        (plane(room["ceil_y"], dy, False), _BG_CEILING),
        (plane(-room["left"], dx, False), _BG_SIDE),
        (plane(room["right"], dx, True), _BG_SIDE),
    ):
        nearer = t < depth
        depth = np.where(nearer, t, depth)
        code[nearer] = c
    px, pz = depth * dx, depth * dz
    tile = (np.floor(px / room["tile"]) + np.floor(pz / room["tile"])) % 2
    stripes = 0.93 + 0.07 * np.sin((px + pz) * 9.0)
    factor = np.where(code == _BG_FLOOR, 0.86 + 0.14 * tile, np.where(code == _BG_CEILING, 1.0, stripes))
    palette = np.stack([room["floor_rgb"], room["ceil_rgb"], room["wall_rgb"], room["wall_rgb"] * 0.8])
    return _Background(depth=depth, code=code, factor=factor.astype(np.float32), palette=palette.astype(np.float32))


def _render(cam: Camera, rays, room: dict, bg: _Background, placed: list[PlacedObject], rng_tex: np.random.Generator):
    """Z-buffer the objects over the background and shade. Returns rgb, depth, surface, inst."""
    dx, dy, dz = rays
    H, W = cam.height, cam.width
    depth = bg.depth.copy()
    inst = np.full((H, W), -1, dtype=np.int16)
    factor = bg.factor.copy()

    # objects, far to near (the z-buffer makes the order irrelevant for correctness)
    order = sorted(range(len(placed)), key=lambda i: -placed[i].z)
    for i in order:
        p = placed[i]
        for prim, bright in category_primitives(p.category, p.x, p.z, room["cam_h"], p.scale):
            win = screen_window(cam, prim)
            if win is None:
                continue
            v0, v1, u0, u1 = win
            t, nx, ny, nz = intersect(prim, dx[v0:v1, u0:u1], dy[v0:v1, u0:u1], dz[v0:v1, u0:u1])
            closer = t < depth[v0:v1, u0:u1]
            if not closer.any():
                continue
            depth[v0:v1, u0:u1][closer] = t[closer]
            inst[v0:v1, u0:u1][closer] = i
            lam = np.maximum(nx[closer] * _LIGHT[0] + ny[closer] * _LIGHT[1] + nz[closer] * _LIGHT[2], 0.0)
            factor[v0:v1, u0:u1][closer] = (0.42 + 0.58 * lam) * bright

    obj = inst >= 0
    code = np.where(obj, inst + 4, bg.code)
    surface_of_code = np.array([SURFACE_FLOOR, SURFACE_CEILING, SURFACE_WALL, SURFACE_WALL], dtype=np.uint8)
    surface = np.where(obj, np.uint8(SURFACE_OBJECT), surface_of_code[bg.code]).astype(np.uint8)
    obj_rows = np.array([COLORS[p.color_name] for p in placed], dtype=np.float32).reshape(-1, 3) + 18.0
    palette = np.concatenate([bg.palette, obj_rows])
    # distance haze and sensor noise keep images from being flat colour fields
    haze = np.clip((depth - 2.0) / 25.0, 0.0, 0.35)
    rgb = np.take(palette, code, axis=0)
    rgb *= (factor * (1.0 - haze))[:, :, None]
    rgb += (190.0 * haze)[:, :, None]
    rgb += rng_tex.integers(-7, 8, (H, W, 3), dtype=np.int16)  # uniform sensor noise
    np.clip(rgb, 0, 255, out=rgb)
    return rgb.astype(np.uint8), depth, surface, inst


def _camera_and_room(rng: np.random.Generator, width: int, height: int) -> tuple[Camera, dict]:
    if width < 32 or height < 32:
        raise ValueError(f"scene size {width}x{height} is too small (min 32x32)")
    hfov = math.radians(float(rng.uniform(55.0, 65.0)))
    cam = Camera(
        width=width,
        height=height,
        focal=width / 2.0 / math.tan(hfov / 2.0),
        pitch=math.radians(float(rng.uniform(12.0, 20.0))),
        cam_h=float(rng.uniform(1.25, 1.6)),
    )
    room = {
        "cam_h": cam.cam_h,
        "ceil_y": -float(rng.uniform(1.1, 1.6)),
        "back": float(rng.uniform(8.5, 12.0)),
        "left": float(rng.uniform(2.8, 4.0)),
        "right": float(rng.uniform(2.8, 4.0)),
        "tile": float(rng.uniform(0.4, 0.8)),
        "floor_rgb": rng.uniform([110, 80, 50], [170, 130, 95]).astype(np.float32),
        "wall_rgb": rng.uniform([150, 150, 140], [215, 205, 195]).astype(np.float32),
        "ceil_rgb": rng.uniform([200, 200, 200], [235, 235, 235]).astype(np.float32),
    }
    return cam, room


def _render_visible(cam, rays, room, bg, placed, tex_seed: int, min_visible_pixels: int):
    """Render; drop objects under ``min_visible_pixels`` and re-render without them."""
    rendered = _render(cam, rays, room, bg, placed, np.random.default_rng(tex_seed))
    inst = rendered[3]
    areas = np.bincount(inst[inst >= 0].ravel(), minlength=len(placed)) if placed else np.zeros(0)
    keep = [p for i, p in enumerate(placed) if areas[i] >= min_visible_pixels]
    if len(keep) != len(placed):
        # dropping objects only uncovers pixels, so survivors stay above the threshold
        placed = keep
        rendered = _render(cam, rays, room, bg, placed, np.random.default_rng(tex_seed))
    return placed, rendered


def _assemble(cam: Camera, placed: list[PlacedObject], rendered) -> Scene:
    rgb, depth, surface, inst = rendered
    objects: list[SceneObject] = []
    for i, p in enumerate(placed):
        mask = inst == i
        ys, xs = np.nonzero(mask)
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
        bbox = (float(x0), float(y0), float(x1 + 1 - x0), float(y1 + 1 - y0))
        objects.append(
            SceneObject(
                object_index=i,
                category=p.category,
                color_name=p.color_name,
                bbox_xywh=bbox,
                mask=mask,
                mean_depth=float(depth[mask].mean()),
                position=position_word(bbox[0] + bbox[2] / 2.0, cam.width),
                size_scale=p.scale,
                center_xz=(p.x, p.z),
            )
        )
    camera = {
        "focal": cam.focal,
        "cx": cam.cx,
        "cy": cam.cy,
        "pitch_deg": math.degrees(cam.pitch),
        "height_m": cam.cam_h,
    }
    return Scene(rgb=rgb, depth=depth, objects=objects, surface=surface, instance_map=inst, camera=camera)


def generate_scene(
    rng: np.random.Generator,
    width: int = 320,
    height: int = 240,
    *,
    min_objects: int = 3,
    max_objects: int = 7,
    min_visible_pixels: int | None = None,
) -> Scene:
    """Draw one random scene. Objects with fewer than ``min_visible_pixels`` visible pixels
    after occlusion are removed from the scene (not just from the labels) and the scene is
    re-rendered, so every remaining object has a valid box and a non-trivial mask.
    """
    if min_visible_pixels is None:
        min_visible_pixels = max(40, int(0.0008 * width * height))
    cam, room = _camera_and_room(rng, width, height)
    rays = cam.rays()
    bg = _background(cam, rays, room)
    tex_seed = int(rng.integers(2**31))
    placed: list[PlacedObject] = []
    rendered = None
    for _attempt in range(6):
        n = int(rng.integers(min_objects, max_objects + 1))
        placed, rendered = _render_visible(
            cam, rays, room, bg, _sample_layout(rng, cam, room, n), tex_seed, min_visible_pixels
        )
        if len(placed) >= min_objects:
            break
    return _assemble(cam, placed, rendered)


def render_layout(
    objects: list[PlacedObject], width: int = 320, height: int = 240, *, seed: int = 0
) -> Scene:
    """Render a hand-made layout (for tests and figures) in the room drawn from ``seed``.

    Objects with no visible pixel at all are left out of ``Scene.objects``; use
    ``SceneObject.center_xz`` to match the rest back to ``objects``.
    """
    for o in objects:
        if o.category not in CATEGORIES or o.color_name not in COLORS:
            raise ValueError(f"unknown category/colour {o.category!r}/{o.color_name!r}")
    rng = np.random.default_rng(seed)
    cam, room = _camera_and_room(rng, width, height)
    rays = cam.rays()
    bg = _background(cam, rays, room)
    placed, rendered = _render_visible(cam, rays, room, bg, list(objects), int(rng.integers(2**31)), 1)
    return _assemble(cam, placed, rendered)
