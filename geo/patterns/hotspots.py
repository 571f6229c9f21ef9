"""Hotspots along the border and inland, and corridors of travel.

- Along the border: Getis-Ord Gi* (esda) of crossings per segment, with segments neighbours
  when they are within ``bandwidth`` segments of each other along the line.
- Inland: H3 cells over track paths, each cell counting the distinct tracks that passed
  through it (the density of paths); Gi* over H3 ring adjacency marks the hot cells.
- Corridors: connected groups of cells whose path density is in the top share, as polygons
  ranked by the tracks through them.

Gi* is a z-score of the local sum (a segment and its neighbours) against the whole border.
The p-value is by default the normal one (``p_norm``): esda's conditional-permutation kernel
is compiled by numba without caching, which costs about 40 s in every new process, more than
whole analyses take. ``permutations > 0`` asks for the permutation p-value (seeded).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

HOT, COLD, NOT_SIGNIFICANT = "hot", "cold", "-"


def chain_neighbours(n: int, bandwidth: int = 1) -> dict[int, list[int]]:
    """Neighbours of each of ``n`` segments in chainage order: those within ``bandwidth``."""
    if bandwidth < 1:
        raise ValueError(f"bandwidth={bandwidth!r}; expected at least 1 segment")
    return {
        i: [j for j in range(max(0, i - bandwidth), min(n, i + bandwidth + 1)) if j != i]
        for i in range(n)
    }


def gi_star(
    values: Sequence[float],
    neighbours: dict[int, list[int]],
    *,
    permutations: int = 0,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Getis-Ord Gi* (esda ``G_Local`` with ``star=True``, binary weights) of each unit.

    Returns ``gi_z`` (z-score under normality), ``p`` (one-sided: normal, or from
    ``permutations`` conditional permutations) and ``class``: "hot" where ``gi_z > 0`` and
    ``p < alpha``, "cold" where ``gi_z < 0`` and ``p < alpha``.
    """
    import warnings

    from esda.getisord import G_Local
    from libpysal.weights import W

    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n < 3:
        raise ValueError(f"Gi* needs at least 3 units; got {n}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands and numba-less esda paths are expected here
        w = W({i: neighbours.get(i, []) for i in range(n)}, silence_warnings=True)
        if np.all(y == y[0]):
            z = np.zeros(n)
            p = np.ones(n)
        else:
            g = G_Local(
                y, w, transform="B", star=True, permutations=permutations, seed=seed, n_jobs=1
            )
            z = np.asarray(g.Zs, dtype=np.float64)
            p = np.asarray(g.p_sim, dtype=np.float64) if permutations else np.asarray(g.p_norm)
    cls = np.where((p < alpha) & (z > 0), HOT, np.where((p < alpha) & (z < 0), COLD, "-"))
    return pd.DataFrame({"gi_z": z, "p": p, "class": cls})


def segment_hotspots(
    rates: pd.DataFrame, *, bandwidth: int = 1, permutations: int = 0, seed: int = 0
) -> pd.DataFrame:
    """Gi* of crossings per segment along the border.

    Parameters
    ----------
    rates
        ``segment_id, crossings`` in chainage order
        (:func:`vigil.geo.patterns.counts.segment_rates`).
    bandwidth
        Segments either side that count as neighbours.
    """
    gi = gi_star(
        rates["crossings"].to_numpy(),
        chain_neighbours(len(rates), bandwidth),
        permutations=permutations,
        seed=seed,
    )
    out = pd.concat([rates.reset_index(drop=True), gi], axis=1)
    out["rank"] = out["gi_z"].rank(ascending=False, method="first").astype(np.int64)
    return out


def path_density(
    track_id: Sequence, lat: Sequence[float], lon: Sequence[float], *, resolution: int = 9
) -> pd.DataFrame:
    """Distinct tracks per H3 cell over track paths: the density of paths.

    Samples are taken as given; paths sampled more sparsely than a cell's edge
    (``h3.average_hexagon_edge_length``) should be densified first.

    Returns ``cell`` (hex string), ``tracks``, ``lat``, ``lon`` (cell centre), most first.
    """
    import h3

    from vigil.geo.patterns.aggregate import h3_cells

    cells = h3_cells(np.asarray(lat, np.float64), np.asarray(lon, np.float64), resolution)
    pairs = pd.DataFrame({"track": np.asarray(track_id), "cell": cells}).drop_duplicates()
    counts = pairs.groupby("cell").size().rename("tracks").reset_index()
    counts["cell"] = [h3.int_to_str(int(c)) for c in counts["cell"]]
    centres = np.array([h3.cell_to_latlng(c) for c in counts["cell"]]).reshape(-1, 2)
    counts["lat"], counts["lon"] = centres[:, 0], centres[:, 1]
    return counts.sort_values(["tracks", "cell"], ascending=[False, True]).reset_index(drop=True)


def cell_neighbours(cells: Sequence[str]) -> dict[int, list[int]]:
    """Adjacency of H3 cells (sharing an edge) among the given ones, by position."""
    import h3

    where = {c: i for i, c in enumerate(cells)}
    return {i: [where[n] for n in h3.grid_ring(c, 1) if n in where] for i, c in enumerate(cells)}


def cell_hotspots(
    density: pd.DataFrame,
    *,
    value: str = "tracks",
    permutations: int = 0,
    seed: int = 0,
    fill_ring: bool = True,
) -> pd.DataFrame:
    """Gi* over H3 cells (inland hotspots). ``fill_ring`` adds empty neighbour cells as zeros.

    Without the zeros around them, cells on the edge of where tracks went would be compared
    only with each other, and a dense corridor surrounded by nothing would not stand out.
    """
    import h3

    d = density[["cell", value]].copy()
    if fill_ring:
        seen = set(d["cell"])
        ring = sorted({n for c in d["cell"] for n in h3.grid_ring(c, 1)} - seen)
        d = pd.concat([d, pd.DataFrame({"cell": ring, value: 0})], ignore_index=True)
    gi = gi_star(
        d[value].to_numpy(),
        cell_neighbours(d["cell"].tolist()),
        permutations=permutations,
        seed=seed,
    )
    out = pd.concat([d.reset_index(drop=True), gi], axis=1)
    centres = np.array([h3.cell_to_latlng(c) for c in out["cell"]]).reshape(-1, 2)
    out["lat"], out["lon"] = centres[:, 0], centres[:, 1]
    return out.sort_values("gi_z", ascending=False).reset_index(drop=True)


def cell_polygon(cell: str):  # -> shapely Polygon (lon, lat)
    """The H3 cell's outline as a shapely polygon in WGS84 lon/lat."""
    import h3
    from shapely.geometry import Polygon

    return Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(cell)])


def corridors(density: pd.DataFrame, *, top_share: float = 0.1, min_cells: int = 2) -> pd.DataFrame:
    """Corridors: connected groups of the densest cells, as polygons ranked by tracks.

    Parameters
    ----------
    density
        :func:`path_density` output.
    top_share
        Share of cells (by density rank) that can belong to a corridor.
    min_cells
        Smallest group that counts as a corridor.

    Returns
    -------
    DataFrame
        ``corridor, cells, tracks_max, tracks_sum, geometry`` (shapely, WGS84 lon/lat).
    """
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not 0 < top_share <= 1:
        raise ValueError(f"top_share={top_share!r}; expected a share in (0, 1]")
    n_top = max(1, int(np.ceil(top_share * len(density))))
    top = density.nlargest(n_top, "tracks").reset_index(drop=True)
    nb = cell_neighbours(top["cell"].tolist())
    rows = [i for i, js in nb.items() for _ in js]
    cols = [j for js in nb.values() for j in js]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(top), len(top)))
    _, label = connected_components(graph, directed=False)
    top["group"] = label
    out = []
    for _, g in top.groupby("group"):
        if len(g) < min_cells:
            continue
        geom = shapely.union_all([cell_polygon(c) for c in g["cell"]])
        out.append(
            {
                "cells": len(g),
                "tracks_max": int(g["tracks"].max()),
                "tracks_sum": int(g["tracks"].sum()),
                "geometry": geom,
            }
        )
    table = pd.DataFrame(out, columns=["cells", "tracks_max", "tracks_sum", "geometry"])
    table = table.sort_values("tracks_max", ascending=False).reset_index(drop=True)
    table.insert(0, "corridor", np.arange(1, len(table) + 1))
    return table
