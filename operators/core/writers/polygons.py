"""Exact voxel-edge boundaries of a 2-D mask as closed polygons (the contours of the RTSTRUCT writer).

Points are ``(col, row)`` = ``(i, j)`` in index space with vertices at pixel corners; one closed polygon per boundary
loop (outer boundary of each island, boundary of each hole), nesting expressed by the even-odd rule alone; see
:mod:`operators.core.writers.rtstruct` for how they become DICOM contours.
"""

from __future__ import annotations

import numpy as np


def mask_to_polygons(mask2d: np.ndarray) -> list[np.ndarray]:
    """The exact boundary of a 2-D mask as closed polygons through pixel corners.

    Args:
        mask2d: ``(rows, cols)`` array; nonzero is foreground.

    Returns:
        One ``(N, 2)`` float64 array per boundary loop, columns ``(col, row)`` = ``(i, j)`` in index space, the
        closing edge implied (last vertex back to first). Outer boundaries have positive shoelace area, holes
        negative; see the module docstring for the full conventions. Empty list for an empty mask.
    """
    m = np.asarray(mask2d)
    if m.ndim != 2:
        raise ValueError(f"mask_to_polygons needs a 2-D (rows, cols) mask, found shape {m.shape}")
    p = np.pad(m.astype(bool), 1)
    if not p.any():
        return []
    width = p.shape[1] + 1  # vertices per lattice row; vertex (x, y) has id y * width + x
    up, down = np.zeros_like(p), np.zeros_like(p)
    left, right = np.zeros_like(p), np.zeros_like(p)
    up[1:], down[:-1], left[:, 1:], right[:, :-1] = p[:-1], p[1:], p[:, :-1], p[:, 1:]
    # Directed boundary edges with the foreground on the same side (positive shoelace orientation):
    # side 0 top (x, y)->(x+1, y), 1 right (x+1, y)->(x+1, y+1), 2 bottom (x+1, y+1)->(x, y+1), 3 left (x, y+1)->(x, y)
    # for the padded pixel at row y, column x.
    sides = ((p & ~up, (0, 0), (1, 0)), (p & ~right, (1, 0), (1, 1)), (p & ~down, (1, 1), (0, 1)),
             (p & ~left, (0, 1), (0, 0)))  # fmt: skip
    starts, ends, pixels = [], [], []
    for edges, (sx, sy), (ex, ey) in sides:
        rows, cols = np.nonzero(edges)
        starts.append((rows + sy) * width + cols + sx)
        ends.append((rows + ey) * width + cols + ex)
        pixels.append(rows * p.shape[1] + cols)
    start, end, pixel = np.concatenate(starts), np.concatenate(ends), np.concatenate(pixels)

    # Successor of each edge: the edge leaving its end vertex. A saddle vertex has two leaving edges; take the one of
    # the same pixel (turn around that pixel's corner). Loops that then pass a vertex twice are split below.
    order = np.argsort(start, kind="stable")
    lo = np.searchsorted(start[order], end, side="left")
    count = np.searchsorted(start[order], end, side="right") - lo
    first = order[lo]
    second = order[np.minimum(lo + 1, len(order) - 1)]
    successor = np.where((count == 2) & (pixel[first] != pixel), second, first)

    loops: list[list[int]] = []
    visited = np.zeros(len(start), dtype=bool)
    successor_list = successor.tolist()
    start_list = start.tolist()
    for e0 in range(len(start)):
        if visited[e0]:
            continue
        cycle = []
        e = e0
        while not visited[e]:
            visited[e] = True
            cycle.append(start_list[e])
            e = successor_list[e]
        loops.extend(_split_at_repeated_vertices(cycle))

    polygons = []
    for loop in loops:
        ids = np.asarray(loop)
        xy = np.stack([ids % width, ids // width], axis=1)
        polygons.append(_canonical(_drop_collinear(xy)))
    polygons.sort(key=lambda v: (v[0, 1], v[0, 0], -np.sign(_signed_area(v))))
    # Padded lattice vertex x is the corner at index coordinate x - 1.5 of the unpadded mask.
    return [v.astype(np.float64) - 1.5 for v in polygons]


def _split_at_repeated_vertices(cycle: list[int]) -> list[list[int]]:
    """Split a closed vertex cycle wherever it revisits a vertex, into cycles that visit each vertex once."""
    if len(set(cycle)) == len(cycle):
        return [cycle]
    out: list[list[int]] = []
    stack: list[int] = []
    position: dict[int, int] = {}
    for v in cycle:
        if v in position:
            i = position[v]
            out.append(stack[i:])
            for u in stack[i + 1 :]:
                del position[u]
            del stack[i + 1 :]
        else:
            position[v] = len(stack)
            stack.append(v)
    out.append(stack)
    return out


def _drop_collinear(xy: np.ndarray) -> np.ndarray:
    """Keep only the vertices of ``(N, 2)`` closed polygon ``xy`` where the direction changes."""
    d_out = np.roll(xy, -1, axis=0) - xy
    d_in = np.roll(d_out, 1, axis=0)
    return xy[np.any(d_in != d_out, axis=1)]


def _canonical(xy: np.ndarray) -> np.ndarray:
    """Rotate a closed polygon so it starts at its top-most (smallest row), then left-most vertex."""
    first = np.lexsort((xy[:, 0], xy[:, 1]))[0]
    return np.roll(xy, -first, axis=0)


def _signed_area(xy: np.ndarray) -> float:
    """Shoelace area of closed polygon ``(N, 2)`` in ``(x, y)``; positive for the outer-boundary orientation."""
    x, y = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2.0


# --------------------------------------------------------------------------------------------------------------
# RT Structure Set
# --------------------------------------------------------------------------------------------------------------
