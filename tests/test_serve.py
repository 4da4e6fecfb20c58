"""`zerograd serve`'s JSON API through FastAPI's test client: every field, every error, and the CLI around it."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
from _serve_models import COLOURS, MEAN, STD, encode, image_data, save_colour_model, solid
from fastapi.testclient import TestClient
from PIL import Image

from zerograd.cli import main
from zerograd.cli import serve as serve_command
from zerograd.datasets import load_mnist
from zerograd.errors import ModelFileError, ZerogradError
from zerograd.images import load_digit_image
from zerograd.models import MLP, SimpleConvNet, prepare_images, save_model
from zerograd.serve import load_served_model, load_served_models, predict_digit
from zerograd.serve.app import MAX_BODY_BYTES, STATIC, create_app

UPLOAD = "the uploaded image"
DIGITS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def mnist_test():
    _, (x, t) = load_mnist(normalize=False, flatten=False)
    return x[:, 0], t


@pytest.fixture(scope="module")
def linear_file(tmp_path_factory):
    """A linear model file (784 -> 10): its saliency for class k is exactly its weight row k."""
    path = tmp_path_factory.mktemp("models") / "linear.safetensors"
    save_model(MLP(784, (), 10, seed=3), path, {"results": {"test_accuracy": 0.5}})
    return path


@pytest.fixture(scope="module")
def client(linear_file):
    """The app serving the book's chapter-3 network (default) and the linear model."""
    models = load_served_models(["pretrained:book-ch3", str(linear_file)])
    with TestClient(create_app(models)) as c:
        yield c


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_import_zerograd_does_not_import_fastapi():
    code = ("import sys, zerograd, zerograd.serve, zerograd.cli; "
            "print(sorted({'fastapi', 'uvicorn'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_health_and_models(client, linear_file):
    assert client.get("/health").json() == {"status": "ok", "models": 2}
    listing = client.get("/api/models").json()
    assert listing["default"] == "book-ch3" and listing["max_request_bytes"] == MAX_BODY_BYTES
    digits = {"kind": "digits", "classes": DIGITS, "channels": 1, "image_size": [28, 28]}
    assert listing["models"] == [
        {"name": "book-ch3", "arch": "book-ch3", "test_accuracy": 0.9352, "label": "book-ch3 (test accuracy 0.9352)",
         **digits},
        {"name": str(linear_file), "arch": "mlp", "test_accuracy": 0.5,
         "label": f"{linear_file} (test accuracy 0.5000)", **digits},
    ]


def test_default_is_the_most_accurate_pretrained_model(monkeypatch):
    from zerograd.models import list_pretrained, load_model
    from zerograd.serve import inference

    accuracies = {}
    for name in list_pretrained():
        try:
            accuracies[name] = load_model(f"pretrained:{name}")[1]["training"]["results"]["test_accuracy"]
        except ZerogradError:  # listed but not (yet) shipped: left out, and said so
            pass
    assert "book-ch3" in accuracies and len(accuracies) >= 3  # book-ch3, mlp and simple-cnn at least
    [best] = load_served_models([])
    assert best.name == max(accuracies, key=accuracies.get)
    assert best.test_accuracy == max(accuracies.values()) > 0.9352

    # a pretrained model that does not load is left out with its error, the others still serve
    monkeypatch.setattr(inference, "list_pretrained", lambda: ["book-ch3", "no-such-net"])
    best, left_out = inference.best_pretrained()
    assert best.name == "book-ch3" and list(left_out) == ["no-such-net"]
    assert left_out["no-such-net"].startswith("no pretrained model named 'no-such-net'")
    monkeypatch.setattr(inference, "list_pretrained", lambda: ["no-such-net"])
    with pytest.raises(ZerogradError, match="^no pretrained model loads in this installation"):
        inference.best_pretrained()


def test_predict_reads_mnist_digits_like_zerograd_predict(client, mnist_test, tmp_path, capsys):
    x, t = mnist_test
    paths = []
    for i in range(12):
        paths.append(tmp_path / f"digit{i}.png")
        paths[-1].write_bytes(png_bytes(x[i]))
    assert main(["predict", "pretrained:book-ch3", *map(str, paths), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    for i, (path, cli) in enumerate(zip(paths, expected)):
        # a data URL (what the page sends) and bare base64 (what a script may send) are the same image
        image = data_url(path.read_bytes()) if i % 2 else base64.b64encode(path.read_bytes()).decode()
        r = client.post("/api/predict", json={"image": image})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"label", "class", "classes", "probabilities", "input", "saliency", "model"}
        assert body["model"] == "book-ch3" and body["classes"] == DIGITS
        assert body["label"] == cli["label"] == int(np.argmax(body["probabilities"]))
        assert body["class"] == cli["class"] == str(body["label"])
        np.testing.assert_allclose(body["probabilities"], cli["probabilities"], atol=1e-6)
        assert abs(sum(body["probabilities"]) - 1) < 1e-5
        seen = np.array(body["input"])
        assert seen.shape == (28, 28) and seen.min() >= 0 and seen.max() == 1
        np.testing.assert_array_equal(seen, load_digit_image(path))
        assert np.array(body["saliency"]).shape == (28, 28)
        assert r.headers["server-timing"].startswith("predict;dur=")
    labels = [client.post("/api/predict", json={"image": data_url(p.read_bytes())}).json()["label"] for p in paths]
    assert sum(label == int(ti) for label, ti in zip(labels, t[:12])) >= 11  # book-ch3 reads 93.5 % of MNIST


def test_saliency_is_the_gradient_of_the_predicted_score(client, linear_file, mnist_test):
    x, _ = mnist_test
    image = data_url(png_bytes(x[3]))
    linear = load_served_model(str(linear_file))
    body = client.post("/api/predict", json={"image": image, "model": str(linear_file)}).json()
    assert body["model"] == str(linear_file)
    weight = linear.model.state_dict()["1.weight"]  # Flatten, then Linear(784, 10)
    np.testing.assert_allclose(body["saliency"], weight[body["label"]].reshape(28, 28), rtol=1e-6)

    # the book's sigmoid network: autograd against central differences of the predicted class's logit
    book = load_served_model("pretrained:book-ch3")
    seen = np.array(body["input"], dtype=np.float32)
    result = predict_digit(book.model, seen)
    h = 1e-2
    steps = np.eye(784, dtype=np.float32).reshape(784, 1, 28, 28) * h
    logit = lambda batch: book.model(batch).data[:, result["label"]]  # noqa: E731
    from zerograd import Tensor, no_grad

    with no_grad():
        numeric = (logit(Tensor(seen + steps)) - logit(Tensor(seen - steps))) / (2 * h)
    np.testing.assert_allclose(np.array(result["saliency"]).ravel(), numeric, atol=2e-3 * np.abs(numeric).max())


def test_unknown_model_is_404(client):
    r = client.post("/api/predict", json={"image": "aGVsbG8=", "model": "deep-nope"})
    assert r.status_code == 404
    assert r.json()["detail"].startswith("no model named 'deep-nope' is served; served: book-ch3, ")


@pytest.mark.parametrize("body, expected", [
    (b"{not json", "the body is not valid JSON ("),
    (b"", "the body is not valid JSON ("),
    (b"{}", "image: Field required"),
    (b'{"model": "book-ch3"}', "image: Field required"),
    (b'{"image": 3}', "image: Input should be a valid string"),
    (b'{"image": "aGVsbG8=", "model": 7}', "model: Input should be a valid string"),
    (b'["image"]', "the body must be a JSON object"),
])
def test_malformed_bodies_are_422(client, body, expected):
    r = client.post("/api/predict", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith(expected) and detail.endswith('send JSON {"image": "<data URL or base64 of a PNG/JPEG>", '
                                                          '"model": "<optional name>"}')


def test_bodies_over_2_mb_are_413_by_header_and_by_size(client):
    def padded(size: int) -> bytes:
        """A JSON body of exactly `size` bytes whose image is not an image."""
        head = b'{"image": "aGVsbG8="}'
        return head + b" " * (size - len(head))

    at_limit = client.post("/api/predict", content=padded(MAX_BODY_BYTES))
    assert at_limit.status_code == 400  # read in full: the image inside is what is wrong
    over = client.post("/api/predict", content=padded(MAX_BODY_BYTES + 1))
    assert over.status_code == 413 and over.json()["detail"].startswith("the request body is over 2 MB")

    # a chunked body carries no Content-Length: its real size decides
    chunks = [padded(MAX_BODY_BYTES + 1)[i : i + 65536] for i in range(0, MAX_BODY_BYTES + 1, 65536)]
    chunked = client.post("/api/predict", content=iter(chunks))
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413


def test_not_an_image_and_blank_canvas_are_400_with_predict_s_message(client, tmp_path, capsys):
    blank = np.full((280, 280), 255, dtype=np.uint8)  # an untouched white canvas
    not_png = b"this is text, not a PNG"
    cut = png_bytes(np.eye(40, dtype=np.uint8) * 255)[:60]  # a PNG cut off in its data
    for data in (png_bytes(blank), not_png, cut):
        path = tmp_path / "file.png"
        path.write_bytes(data)
        assert main(["predict", "pretrained:book-ch3", str(path)]) == 1
        cli_error = capsys.readouterr().err.strip()
        r = client.post("/api/predict", json={"image": data_url(data)})
        assert r.status_code == 400
        assert cli_error == f"zerograd predict: error: {r.json()['detail']}".replace(UPLOAD, str(path))


@pytest.mark.parametrize("image, expected", [
    ("%%% not base64 %%%", f"{UPLOAD} is neither a data URL nor base64"),
    ("data:image/png,rawbytes", f"{UPLOAD} is a data URL without base64 data"),
    ("", f"{UPLOAD} is not an image Pillow can read"),
])
def test_undecodable_image_text_is_400(client, image, expected):
    r = client.post("/api/predict", json={"image": image})
    assert r.status_code == 400 and r.json()["detail"].startswith(expected)


def test_huge_image_is_refused_before_decoding(client):
    buf = io.BytesIO()
    Image.new("1", (5000, 5000), 1).save(buf, format="PNG")  # 25 megapixels in a few kB
    assert len(buf.getvalue()) < MAX_BODY_BYTES
    r = client.post("/api/predict", json={"image": data_url(buf.getvalue())})
    assert r.status_code == 400
    assert r.json()["detail"] == (f"{UPLOAD} is too large to be a digit image (5000x5000 pixels); "
                                  "a few hundred pixels across is plenty: shrink it")


def odd_images() -> list[tuple[str, bytes]]:
    stroke = np.zeros((64, 64, 4), dtype=np.uint8)
    stroke[10:54, 30:34] = 255  # a white stroke on a transparent canvas
    out = [("rgba", png_bytes(stroke)),
           ("one-pixel", png_bytes(np.zeros((1, 1), dtype=np.uint8))),
           ("thin-line", png_bytes(np.pad(np.zeros((1, 300), dtype=np.uint8), 1, constant_values=255))),
           ("16-bit", png_bytes((np.eye(30) * 60000).astype(np.uint16)))]
    jpeg = io.BytesIO()
    Image.fromarray(np.pad(np.full((40, 8), 20, np.uint8), 30, constant_values=230)).save(jpeg, format="JPEG")
    return out + [("jpeg", jpeg.getvalue())]


@pytest.mark.parametrize("name, data", odd_images(), ids=[n for n, _ in odd_images()])
def test_odd_images_never_give_500(client, name, data):
    r = client.post("/api/predict", json={"image": data_url(data)})
    assert r.status_code in (200, 400), r.text
    if name in ("rgba", "jpeg"):
        assert r.status_code == 200 and r.json()["label"] == 1


def test_page_and_static_files_are_served_without_external_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="canvas"', 'id="clear"', 'id="upload"', 'type="file"', 'id="prediction"',
                    'id="probabilities"', 'id="model"', 'id="drop"', 'for="upload"'):
        assert element in page.text
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and f"/static/{name}" in page.text
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would load its assets from a CDN


def test_served_models_are_checked(tmp_path, linear_file):
    small = tmp_path / "small.safetensors"
    save_model(MLP(64, (8,), 10), small)
    with pytest.raises(ZerogradError, match="does not read 28x28 digit images"):
        load_served_model(str(small))
    with pytest.raises(ZerogradError, match="given more than once"):
        load_served_models([str(linear_file), str(linear_file)])
    untrained = tmp_path / "untrained.safetensors"  # saved without training results
    save_model(MLP(784, (16,), 10), untrained)
    assert load_served_model(str(untrained)).describe() == {
        "name": str(untrained), "arch": "mlp", "test_accuracy": None, "label": f"{untrained} (test accuracy unknown)",
        "kind": "digits", "classes": DIGITS, "channels": 1, "image_size": [28, 28]}
    # MNIST-format data (no mean recorded) keeps the digit path, with the class names its file records
    fashion = tmp_path / "fashion.safetensors"
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    save_model(MLP(784, (), 10), fashion, data={"source": "fashion-mnist", "classes": names, "channels": 1,
                                                 "image_size": [28, 28], "mean": None, "std": None})
    served = load_served_model(str(fashion))
    assert (served.kind, served.classes, served.info) == ("digits", names, None)


def test_cli_errors_are_one_line(capsys, tmp_path):
    assert main(["serve", "--port", "70000"]) == 1
    assert capsys.readouterr().err == ("zerograd serve: error: --port must be between 0 and 65535 "
                                       "(0 picks a free port), got 70000\n")
    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zerograd serve: error: ") and err.count("\n") == 1 and "missing.safetensors" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "pretrained:book-ch3", "--port", str(port)]) == 1
    assert capsys.readouterr().err == (f"zerograd serve: error: cannot listen on 127.0.0.1:{port} (Address already in "
                                       "use); choose another --port\n")


def test_missing_extra_names_the_install_command():
    code = ("import sys; sys.modules['fastapi'] = None; from zerograd.cli import main; "
            "sys.exit(main(['serve', '--port', '0']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.startswith("zerograd serve: error: zerograd serve needs FastAPI")
    assert r.stderr.rstrip().endswith('pip install "zerograd[serve]"') and r.stderr.count("\n") == 1


def test_all_interfaces_warning_comes_from_the_cli(monkeypatch, capsys):
    """--host 0.0.0.0 warns on stderr; the socket is bound to 127.0.0.1 here, and uvicorn is not started."""
    import uvicorn

    real_bind = serve_command._bind
    monkeypatch.setattr(serve_command, "_bind", lambda host, port: real_bind("127.0.0.1", 0))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    for host in ("0.0.0.0", "::"):
        assert main(["serve", "pretrained:book-ch3", "--host", host, "--port", "0"]) == 0
        out, err = capsys.readouterr()
        assert f"warning: --host {host} listens on all interfaces" in err
        assert "open http://127.0.0.1:" in out
    assert main(["serve", "pretrained:book-ch3", "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err and out.startswith("model book-ch3 (book-ch3, test accuracy 0.9352)\n")



# Image models: trained on a folder of images (or CIFAR-10), they read any image prepared as in training.

@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """The linear colour model (32x32, its answers known), a CNN on 24x40 colour images, a CNN on 20x20 grey ones."""
    folder = tmp_path_factory.mktemp("image-models")
    colour = save_colour_model(folder / "colour.safetensors")
    wide = folder / "wide.safetensors"
    save_model(SimpleConvNet((3, 24, 40), num_classes=4, filters=4, hidden=8, seed=0), wide,
               data=image_data((24, 40), 3, ["a", "b", "c", "d"]))
    grey = folder / "grey.safetensors"
    save_model(SimpleConvNet((1, 20, 20), num_classes=2, filters=4, hidden=8, seed=1), grey,
               {"results": {"test_accuracy": 0.75}}, data=image_data((20, 20), 1, ["ring", "dot"]))
    return {"colour": colour, "wide": wide, "grey": grey}


@pytest.fixture(scope="module")
def image_client(image_files):
    """The app serving the colour model (default), the two CNNs and the book's digit network."""
    models = load_served_models([str(image_files[k]) for k in ("colour", "wide", "grey")] + ["pretrained:book-ch3"])
    with TestClient(create_app(models)) as c:
        yield c


def test_image_models_are_listed_with_their_kind_and_classes(image_client, image_files):
    listing = image_client.get("/api/models").json()
    assert listing["default"] == str(image_files["colour"])
    assert [(m["name"], m["arch"], m["kind"], m["classes"], m["channels"], m["image_size"], m["test_accuracy"])
            for m in listing["models"]] == [
        (str(image_files["colour"]), "mlp", "images", ["tomato", "leaf", "sky"], 3, [32, 32], 1.0),
        (str(image_files["wide"]), "simple-cnn", "images", ["a", "b", "c", "d"], 3, [24, 40], None),
        (str(image_files["grey"]), "simple-cnn", "images", ["ring", "dot"], 1, [20, 20], 0.75),
        ("book-ch3", "book-ch3", "digits", DIGITS, 1, [28, 28], 0.9352),
    ]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_colour_images_get_their_class_name_as_zerograd_predict_gives_it(image_client, image_files, fmt, tmp_path,
                                                                         capsys):
    colour = load_served_model(str(image_files["colour"]))
    weight = colour.model.state_dict()["1.weight"].reshape(3, 3, 32, 32)  # (class, channel, H, W)
    for name, rgb in COLOURS.items():
        data = encode(solid(rgb), fmt)
        path = tmp_path / f"{name}.{fmt.lower()}"
        path.write_bytes(data)
        assert main(["predict", str(image_files["colour"]), str(path), "--json"]) == 0
        [cli] = json.loads(capsys.readouterr().out)
        r = image_client.post("/api/predict", json={"image": data_url(data, f"image/{fmt.lower()}")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"label", "class", "classes", "probabilities", "input", "saliency", "model"}
        assert body["model"] == str(image_files["colour"]) and body["classes"] == ["tomato", "leaf", "sky"]
        assert body["class"] == cli["class"] == name and body["label"] == list(COLOURS).index(name)
        np.testing.assert_allclose(body["probabilities"], cli["probabilities"], atol=1e-6)
        # the input shown back is the prepared image with its normalisation undone: (H, W, 3) in [0, 1]
        [x] = prepare_images([data], image_data())
        shown = np.array(body["input"])
        assert shown.shape == (32, 32, 3)
        np.testing.assert_allclose(shown, (x * np.reshape(STD, (3, 1, 1)) + np.reshape(MEAN, (3, 1, 1)))
                                   .transpose(1, 2, 0), atol=1e-4)
        if fmt == "PNG":
            np.testing.assert_allclose(shown, np.broadcast_to(np.array(rgb) / 255, (32, 32, 3)), atol=1e-4)
        # a linear model's gradient is its weight row: saliency = max over channels of |row of the class|
        np.testing.assert_allclose(body["saliency"], np.abs(weight[body["label"]]).max(axis=0), rtol=1e-6)


def test_grey_and_transparent_uploads_to_a_colour_model_are_converted(image_client):
    grey = encode(solid((128,)))  # mode L: read as RGB (128, 128, 128), bluest after normalising by MEAN
    body = image_client.post("/api/predict", json={"image": data_url(grey)}).json()
    assert body["class"] == "sky"
    np.testing.assert_allclose(body["input"], np.full((32, 32, 3), 128 / 255), atol=1e-4)
    rgba = np.dstack([solid(COLOURS["leaf"]), np.full((40, 60), 255, np.uint8)])  # opaque RGBA
    assert image_client.post("/api/predict", json={"image": data_url(encode(rgba))}).json()["class"] == "leaf"


def test_saliency_and_input_take_the_model_s_image_size(image_client, image_files):
    photo = encode(np.random.default_rng(0).integers(0, 256, (90, 70, 3), dtype=np.uint8), "JPEG")
    for key, size, classes, input_shape in [("wide", (24, 40), 4, (24, 40, 3)), ("grey", (20, 20), 2, (20, 20))]:
        r = image_client.post("/api/predict", json={"image": data_url(photo), "model": str(image_files[key])})
        assert r.status_code == 200, r.text
        body = r.json()
        saliency, seen = np.array(body["saliency"]), np.array(body["input"])
        assert saliency.shape == size and (saliency >= 0).all() and saliency.max() > 0
        assert seen.shape == input_shape and 0 <= seen.min() and seen.max() <= 1
        assert len(body["probabilities"]) == len(body["classes"]) == classes
        assert body["class"] == body["classes"][body["label"]] == body["classes"][int(np.argmax(body["probabilities"]))]
    # the digit model still reads the same upload as a digit, with its labels as class names
    bar = np.pad(np.full((40, 8), 20, np.uint8), 30, constant_values=230)  # a dark 1 on light paper
    body = image_client.post("/api/predict", json={"image": data_url(encode(bar)), "model": "book-ch3"}).json()
    assert body["class"] == "1" and np.array(body["saliency"]).shape == (28, 28)


@pytest.mark.parametrize("data, expected", [
    (b"this is text, not a PNG", f"{UPLOAD} is not an image"),
    (encode(solid(COLOURS["sky"]))[:60], f"{UPLOAD} "),  # a PNG cut off in its data
    (b"", f"{UPLOAD} is not an image"),
], ids=["text", "cut-png", "empty"])
def test_bad_images_to_an_image_model_are_one_line_400(image_client, data, expected):
    r = image_client.post("/api/predict", json={"image": data_url(data)})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith(expected) and "\n" not in detail


def test_huge_image_to_an_image_model_is_refused_before_decoding(image_client):
    buf = io.BytesIO()
    Image.new("RGB", (5000, 5000)).save(buf, format="PNG")  # 25 megapixels in a few tens of kB
    assert len(buf.getvalue()) < MAX_BODY_BYTES
    r = image_client.post("/api/predict", json={"image": data_url(buf.getvalue())})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith(UPLOAD) and "5000x5000" in detail and "\n" not in detail


def test_damaged_data_records_are_refused_at_load(tmp_path):
    def saved(size=(32, 32), **changes):
        path = tmp_path / "model.safetensors"
        save_model(MLP(3 * 32 * 32, (), 3, seed=0), path, data={**image_data(size), **changes})
        return str(path)

    for changes, message in [({"channels": 2}, "channels 2"), ({"std": [0.2, 0.0, 0.2]}, "std [0.2, 0.0, 0.2]"),
                             ({"mean": [0.5]}, "mean [0.5]"), ({"image_size": [0, 32]}, "image_size [0, 32]"),
                             ({"image_size": "32x32"}, "image_size '32x32'")]:
        with pytest.raises(ModelFileError, match=r"model\.safetensors: its data record \(.*" + re.escape(message)):
            load_served_model(saved(**changes))
    with pytest.raises(ModelFileError, match=r"does not read the 16x16 images with 3 channel\(s\) its file records"):
        load_served_model(saved(size=(16, 16)))
    with pytest.raises(ModelFileError, match=r"gives \(3,\) outputs per image but its file names 2 classes"):
        load_served_model(saved(classes=["cat", "dog"]))
    assert load_served_model(saved()).classes == ["tomato", "leaf", "sky"]


def test_cli_names_an_image_model_s_images_and_classes(monkeypatch, capsys, image_files):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    assert main(["serve", str(image_files["colour"]), str(image_files["grey"]), "pretrained:book-ch3",
                 "--port", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    colour, grey = image_files["colour"], image_files["grey"]
    assert lines[:3] == [f"model {colour} (mlp, test accuracy 1.0000; 32x32 colour images, 3 classes)",
                         f"model {grey} (simple-cnn, test accuracy 0.7500; 20x20 grey images, 2 classes)",
                         "model book-ch3 (book-ch3, test accuracy 0.9352)"]
