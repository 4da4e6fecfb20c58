"""Fuzzing POST /api/predict of `zerograd serve`: random bodies get a 4xx answer with a message, never a 500.

Two models are served: the book's digit network (the default) and an image model reading 32x32 colour images.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from _fuzz import TRIED, fuzz
from _serve_models import save_colour_model
from fastapi.testclient import TestClient  # the test extra installs FastAPI: a missing one fails, never skips
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from zerograd.serve.app import MAX_BODY_BYTES, create_app
from zerograd.serve.inference import load_served_models

EXPECTED = {200, 400, 404, 413, 422}


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory) -> str:
    return str(save_colour_model(tmp_path_factory.mktemp("models") / "colour.safetensors"))


@pytest.fixture(scope="module")
def client(colour_model):
    # raise_server_exceptions=False: an unhandled exception becomes the 500 a browser would see.
    models = load_served_models(["pretrained:book-ch3", colour_model])
    with TestClient(create_app(models), raise_server_exceptions=False) as c:
        yield c


def _png() -> bytes:
    digit = np.full((40, 40), 255, dtype=np.uint8)
    digit[8:32, 18:23] = 0
    buf = io.BytesIO()
    Image.fromarray(digit).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()


def _post(client, content: bytes, content_type: str = "application/json"):
    TRIED["web API"] += 1
    r = client.post("/api/predict", content=content, headers={"Content-Type": content_type})
    assert r.status_code in EXPECTED, (r.status_code, r.text[:300])
    body = r.json()
    if r.status_code == 200:
        assert len(body["probabilities"]) == len(body["classes"]) == (10 if body["model"] == "book-ch3" else 3)
        assert body["class"] == body["classes"][body["label"]]
    else:
        assert isinstance(body["detail"], str) and body["detail"] and "\n" not in body["detail"]
    return r


def _json() -> st.SearchStrategy:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                       max_size=3), max_leaves=10)


def _damaged_png(draw) -> bytes:
    data = bytearray(PNG)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@st.composite
def _image_field(draw) -> object:
    raw = draw(st.sampled_from(["png", "damaged", "random"]))
    data = PNG if raw == "png" else _damaged_png(draw) if raw == "damaged" else draw(st.binary(max_size=200))
    b64 = base64.b64encode(data).decode()
    kind = draw(st.sampled_from(["data url", "bare", "bad base64", "wrong mime", "json", "text"]))
    if kind == "data url":
        return f"data:image/png;base64,{b64}"
    if kind == "bare":
        return b64
    if kind == "bad base64":
        return b64[: draw(st.integers(0, len(b64)))] + draw(st.text(max_size=4))
    if kind == "wrong mime":
        return f"data:{draw(st.text(max_size=12))};base64,{b64}"
    if kind == "json":
        return draw(_json())
    return draw(st.text(max_size=40))


@fuzz(100)
@given(data=st.data())
def test_random_requests_never_get_a_500(client, colour_model, data):
    body = {}
    if data.draw(st.integers(0, 9)):  # mostly with an image field
        body["image"] = data.draw(_image_field())
    if data.draw(st.booleans()):
        body["model"] = data.draw(st.sampled_from(["book-ch3", colour_model, "nope", ""]) | _json())
    if data.draw(st.booleans()):
        body[data.draw(st.text(max_size=5))] = data.draw(_json())
    content = json.dumps(body).encode()
    if data.draw(st.integers(0, 9)) == 0:
        content = content[: data.draw(st.integers(0, len(content)))]  # cut JSON
    _post(client, content, data.draw(st.sampled_from(["application/json", "text/plain", "image/png", ""])))


@fuzz(150)
@given(raw=st.binary(max_size=400))
def test_random_bytes_never_get_a_500(client, raw):
    _post(client, raw)


def test_the_valid_request_and_the_limits(client, colour_model):
    assert _post(client, json.dumps({"image": base64.b64encode(PNG).decode()}).encode()).status_code == 200
    valid = {"image": base64.b64encode(PNG).decode(), "model": colour_model}
    assert _post(client, json.dumps(valid).encode()).json()["class"] == "sky"  # grey: the bluest after normalising
    big = json.dumps({"image": "A" * (MAX_BODY_BYTES + 10)}).encode()
    assert _post(client, big).status_code == 413
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000), 1).save(bomb, "PNG")  # 64 megapixels in ~10 kB
    r = _post(client, json.dumps({"image": base64.b64encode(bomb.getvalue()).decode()}).encode())
    assert r.status_code == 400 and "too large to be a digit image" in r.json()["detail"]
    r = _post(client, json.dumps({"image": base64.b64encode(bomb.getvalue()).decode(), "model": colour_model}).encode())
    assert r.status_code == 400 and "8000x8000" in r.json()["detail"]
    deep = ("[" * 100_000 + "]" * 100_000).encode()  # JSON nested past any recursion limit
    assert _post(client, deep).status_code == 422
