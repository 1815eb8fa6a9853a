"""Netlists as text: human-readable comments, deterministic bytes, manifest hashes."""

from __future__ import annotations

import json

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.spice.netlist import tile_netlist, tile_subckt


def test_every_device_line_names_layer_tile_row_col_weight(compiled):
    text = tile_subckt(compiled, Chip(compiled), 0, 0, 0)
    devices = [line for line in text.splitlines() if line.startswith("Xd_")]
    layer = compiled.layers[0]
    assert len(devices) == 2 * layer.rows * layer.cols
    first = devices[0]
    w = int(layer.weight[0, 0])
    assert f"$ conv0 tile(0,0) row 0 col 0 w={w:+d} G+" in first
    r = 10000.0 if w > 0 else 100000.0
    assert f"r={r!r}" in first
    assert text.rstrip().endswith(".ends conv0_r0_c0")
    wrapper = tile_netlist(compiled, Chip(compiled), 0, 0, 0)
    assert ".include conv0_r0_c0.sub" in wrapper and ".include lib/memristor.lib" in wrapper
    assert wrapper.count("\nVr") == layer.rows and wrapper.rstrip().endswith(".end")


def test_netlists_are_deterministic_and_follow_the_chip(compiled):
    params = DeviceParams(sigma_on_rel=0.1, sigma_off_rel=0.1)
    a = tile_subckt(compiled, Chip(compiled, params, 7), 1, 2, 0)
    b = tile_subckt(compiled, Chip(compiled, params, 7), 1, 2, 0)
    c = tile_subckt(compiled, Chip(compiled, params, 8), 1, 2, 0)
    assert a == b and a != c
    assert "seed=7" in a


def test_build_manifest_lists_every_netlist_with_hash(build_dir, compiled):
    manifest = json.loads((build_dir / "manifest.json").read_text())
    netlists = [k for k in manifest["files"] if k.startswith("netlists/") and k.endswith(".cir")]
    tiles = sum(layer.tiling.n_row_tiles * layer.tiling.n_col_tiles for layer in compiled.layers)
    tops = [k for k in netlists if k.endswith("_top.cir")]
    assert len(netlists) - len(tops) == tiles == 38 and len(tops) == 3
    assert all(len(manifest["files"][k]) == 64 for k in netlists)
    subckts = [k for k in manifest["files"] if k.endswith(".sub")]
    assert len(subckts) == tiles
