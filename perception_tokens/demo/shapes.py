"""The demo scenes' geometry: each category as analytic primitives, a pinhole camera, and
exact ray intersections (planes are in :mod:`.scenes`). Pure numpy, no randomness."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Scene categories: their names are LVIS v1 category names; writers map them to COCO.
CATEGORIES: tuple[str, ...] = ("ball", "bottle", "cup", "chair", "book", "teddy_bear")


# ----------------------------------------------------------------------------- primitives
# Each primitive is a tuple: ("sphere", cx, cy, cz, r) / ("box", x0, y0, z0, x1, y1, z1) /
# ("cyl", cx, cz, r, y_top, y_bottom), plus a brightness factor. World frame: x right,
# y DOWN, z forward (horizontal); the camera sits at the origin; the floor is y = cam_h.


def category_primitives(category: str, x: float, z: float, floor_y: float, s: float) -> list[tuple]:
    """Primitives for one object standing on the floor at (x, z) with size scale ``s``."""
    fy = floor_y
    if category == "ball":
        r = 0.24 * s
        return [(("sphere", x, fy - r, z, r), 1.0)]
    if category == "cup":
        r, h = 0.15 * s, 0.26 * s
        handle = ("box", x + r - 0.01, fy - 0.8 * h, z - 0.02 * s, x + r + 0.07 * s, fy - 0.25 * h, z + 0.02 * s)
        return [(("cyl", x, z, r, fy - h, fy), 1.0), (handle, 0.85)]
    if category == "bottle":
        r, h = 0.10 * s, 0.36 * s
        nr, nh = 0.04 * s, 0.16 * s
        return [
            (("cyl", x, z, r, fy - h, fy), 1.0),
            (("cyl", x, z, nr, fy - h - nh, fy - h), 0.9),
            (("cyl", x, z, nr * 1.15, fy - h - nh - 0.03 * s, fy - h - nh), 0.6),  # cap
        ]
    if category == "book":
        w, h, d = 0.34 * s, 0.44 * s, 0.07 * s  # standing upright, cover towards the camera
        return [
            (("box", x - w / 2, fy - h, z - d / 2, x + w / 2, fy, z + d / 2), 1.0),
            (("box", x - w / 2 + 0.02 * s, fy - h + 0.012 * s, z - d / 2 + 0.01 * s,
              x + w / 2 + 0.004 * s, fy - 0.012 * s, z + d / 2 - 0.01 * s), 1.35),  # pages
        ]
    if category == "chair":
        w, seat_h, t, back_h, leg = 0.52 * s, 0.48 * s, 0.06 * s, 0.50 * s, 0.05 * s
        x0, x1, z0, z1 = x - w / 2, x + w / 2, z - w / 2, z + w / 2
        prims = [(("box", x0, fy - seat_h, z0, x1, fy - seat_h + t, z1), 1.0)]
        for lx, lz in ((x0, z0), (x1 - leg, z0), (x0, z1 - leg), (x1 - leg, z1 - leg)):
            prims.append((("box", lx, fy - seat_h + t, lz, lx + leg, fy, lz + leg), 0.7))
        prims.append((("box", x0, fy - seat_h - back_h, z1 - t, x1, fy - seat_h, z1), 0.9))
        return prims
    if category == "teddy_bear":
        br, hr, er = 0.22 * s, 0.15 * s, 0.055 * s
        body_y = fy - br
        head_y = body_y - br - hr * 0.7
        return [
            (("sphere", x, body_y, z, br), 1.0),
            (("sphere", x, head_y, z - 0.02 * s, hr), 1.0),
            (("sphere", x - hr * 0.7, head_y - hr * 0.75, z, er), 0.8),
            (("sphere", x + hr * 0.7, head_y - hr * 0.75, z, er), 0.8),
            (("sphere", x, head_y + hr * 0.25, z - hr * 0.9, er * 0.8), 0.6),  # snout
        ]
    raise ValueError(f"unknown scene category {category!r}; known: {CATEGORIES}")


FOOTPRINT = {"ball": 0.24, "cup": 0.2, "bottle": 0.1, "book": 0.18, "chair": 0.37, "teddy_bear": 0.22}


def primitive_bounds(prim: tuple) -> tuple[np.ndarray, np.ndarray]:
    kind = prim[0]
    if kind == "sphere":
        _, cx, cy, cz, r = prim
        c = np.array([cx, cy, cz])
        return c - r, c + r
    if kind == "box":
        return np.array(prim[1:4]), np.array(prim[4:7])
    _, cx, cz, r, y0, y1 = prim
    return np.array([cx - r, y0, cz - r]), np.array([cx + r, y1, cz + r])


def intersect(prim: tuple, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray):
    """Ray (origin 0, direction d) / primitive. Returns (t, nx, ny, nz); t = inf on miss."""
    inf = np.float32(np.inf)
    kind = prim[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "sphere":
            _, cx, cy, cz, r = prim
            a = dx * dx + dy * dy + dz * dz
            b = dx * cx + dy * cy + dz * cz
            c = cx * cx + cy * cy + cz * cz - r * r
            disc = b * b - a * c
            hit = disc >= 0
            t = np.where(hit, (b - np.sqrt(np.maximum(disc, 0))) / a, inf)
            t = np.where(t > 0, t, inf)
            return t, (t * dx - cx) / r, (t * dy - cy) / r, (t * dz - cz) / r
        if kind == "box":
            lo = prim[1:4]
            hi = prim[4:7]
            tmins, tmaxs = [], []
            for d, l, h in ((dx, lo[0], hi[0]), (dy, lo[1], hi[1]), (dz, lo[2], hi[2])):
                t1, t2 = l / d, h / d
                tmins.append(np.minimum(t1, t2))
                tmaxs.append(np.maximum(t1, t2))
            tmin = np.stack(tmins)
            tnear = tmin.max(axis=0)
            tfar = np.minimum(np.minimum(tmaxs[0], tmaxs[1]), tmaxs[2])
            hit = (tnear <= tfar) & (tnear > 0)
            t = np.where(hit, tnear, inf)
            axis = tmin.argmax(axis=0)
            nx = np.where(axis == 0, -np.sign(dx), 0.0)
            ny = np.where(axis == 1, -np.sign(dy), 0.0)
            nz = np.where(axis == 2, -np.sign(dz), 0.0)
            return t, nx, ny, nz
        # vertical cylinder
        _, cx, cz, r, y_top, y_bot = prim
        a = dx * dx + dz * dz
        b = dx * cx + dz * cz
        c = cx * cx + cz * cz - r * r
        disc = b * b - a * c
        ts = np.where(disc >= 0, (b - np.sqrt(np.maximum(disc, 0))) / a, inf)
        ys = ts * dy
        ts = np.where((ts > 0) & (ys >= y_top) & (ys <= y_bot), ts, inf)
        tc = y_top / dy
        px, pz = tc * dx - cx, tc * dz - cz
        tc = np.where((tc > 0) & (px * px + pz * pz <= r * r), tc, inf)
        side = ts <= tc
        t = np.minimum(ts, tc)
        nx = np.where(side, (ts * dx - cx) / r, 0.0)
        ny = np.where(side, 0.0, -1.0)
        nz = np.where(side, (ts * dz - cz) / r, 0.0)
        return t, nx, ny, nz


# ----------------------------------------------------------------------------- camera


@dataclass
class Camera:
    width: int
    height: int
    focal: float
    pitch: float  # radians, positive = looking down
    cam_h: float

    @property
    def cx(self) -> float:
        return self.width / 2.0

    @property
    def cy(self) -> float:
        return self.height / 2.0

    def rays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World-frame ray directions whose camera-frame z component is 1 (so t = z-depth)."""
        u = (np.arange(self.width, dtype=np.float32) + 0.5 - self.cx) / self.focal
        v = (np.arange(self.height, dtype=np.float32) + 0.5 - self.cy) / self.focal
        xc, yc = np.meshgrid(u, v)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        dx = xc
        dy = yc * cp + sp
        dz = -yc * sp + cp
        return dx.astype(np.float32), dy.astype(np.float32), dz.astype(np.float32)

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points (N,3) -> pixel-index coordinates (u, v) and camera z."""
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        xc = pts[:, 0]
        yc = pts[:, 1] * cp - pts[:, 2] * sp
        zc = pts[:, 1] * sp + pts[:, 2] * cp
        u = self.focal * xc / zc + self.cx - 0.5
        v = self.focal * yc / zc + self.cy - 0.5
        return u, v, zc


def screen_window(cam: Camera, prim: tuple) -> tuple[int, int, int, int] | None:
    lo, hi = primitive_bounds(prim)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    u, v, zc = cam.project(corners)
    if np.any(zc <= 1e-3):
        return 0, cam.height, 0, cam.width
    u0 = max(int(math.floor(u.min())) - 1, 0)
    u1 = min(int(math.ceil(u.max())) + 2, cam.width)
    v0 = max(int(math.floor(v.min())) - 1, 0)
    v1 = min(int(math.ceil(v.max())) + 2, cam.height)
    if u0 >= u1 or v0 >= v1:
        return None
    return v0, v1, u0, u1
