"""zerograd.save / zerograd.load: nested checkpoints in safetensors files, loaded without running code."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import zerograd as zg
from zerograd import nn, optim
from zerograd.errors import ModelFileError, ZerogradError


def test_state_dict_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    path = tmp_path / "model.pt"
    zg.save(model.state_dict(), path)
    loaded = zg.load(path)
    assert list(loaded) == list(model.state_dict())
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    fresh.load_state_dict(loaded)
    x = zg.randn(5, 3)
    model.eval(), fresh.eval()
    assert np.array_equal(model(x).data, fresh(x).data)


def test_nested_checkpoint_keeps_types_and_values(tmp_path):
    model = nn.Linear(2, 2)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    model(zg.ones(1, 2)).sum().backward()
    opt.step()
    checkpoint = {
        "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "loss": np.float32(0.25),
        "best": None, "name": "run-1", "flags": [True, (1, 2.5)], 7: "int key",
        "tensor": zg.tensor([1.0, 2.0], requires_grad=True), "param": model.weight, "mask": zg.ones(2) > 0,
    }
    zg.save(checkpoint, tmp_path / "ck.safetensors")
    back = zg.load(tmp_path / "ck.safetensors", map_location="cpu", weights_only=True)
    assert back["epoch"] == 3 and back["loss"] == 0.25 and back["best"] is None and back["name"] == "run-1"
    assert back["flags"] == [True, (1, 2.5)] and back[7] == "int key"
    assert isinstance(back["tensor"], zg.Tensor) and back["tensor"].requires_grad and back["tensor"].tolist() == [1, 2]
    assert isinstance(back["param"], nn.Parameter) and np.array_equal(back["param"].data, model.weight.data)
    assert back["mask"].dtype == zg.bool
    fresh_opt = optim.Adam(nn.Linear(2, 2).parameters(), lr=1e-3)
    fresh_opt.load_state_dict(back["optimizer"])
    assert fresh_opt.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_file_is_plain_safetensors(tmp_path):
    from safetensors.numpy import load_file

    zg.save({"a": {"b": zg.ones(2)}, "a/b": zg.zeros(3)}, tmp_path / "f.safetensors")  # paths that could clash
    arrays = load_file(str(tmp_path / "f.safetensors"))
    assert sorted(a.shape for a in arrays.values()) == [(2,), (3,)]
    back = zg.load(tmp_path / "f.safetensors")
    assert back["a"]["b"].tolist() == [1, 1] and back["a/b"].tolist() == [0, 0, 0]


def test_load_refuses_pickles_and_other_files(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"x": Boom()}))
    with pytest.raises(ModelFileError, match="pickle"):
        zg.load(evil)
    model_file = tmp_path / "model.safetensors"
    from zerograd.io import save_model_file

    save_model_file(model_file, {"w": np.ones(2)}, {"arch": "x"})
    with pytest.raises(ModelFileError, match="not one written by zerograd.save"):
        zg.load(model_file)


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(ZerogradError, match="Linear"):
        zg.save({"model": nn.Linear(2, 2)}, tmp_path / "m.pt")
    with pytest.raises(ZerogradError, match="keys"):
        zg.save({(1, 2): zg.ones(1)}, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()
    json.dumps({})  # json is what the header holds; nothing else is ever parsed
