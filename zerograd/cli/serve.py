"""`zerograd serve`: load the models, bind the address, print it, run uvicorn until Ctrl-C.

The page and its API are zerograd.serve's (FastAPI, imported only when the command runs): a digit model
(MNIST) reads a drawing, a model trained on your own images (or CIFAR-10) reads an uploaded image.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

from ..errors import ZerogradError
from ..serve.inference import best_pretrained, load_served_models
from .common import add_debug

__all__ = ["add_parser", "run"]

ALL_INTERFACES = {"0.0.0.0", "::", "[::]", ""}


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to host:port (port 0: a free one), IPv4 or IPv6."""
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ZerogradError(f"--host {host!r} is not an address of this machine ({err}); try 127.0.0.1") from err
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after Ctrl-C
    if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::" also takes IPv4 clients
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ZerogradError(f"cannot listen on {host}:{port} ({err.strerror}); choose another --port") from err
    return sock


def _url(host: str, port: int) -> str:
    """The address to open in a browser."""
    if host in ALL_INTERFACES:
        host = "127.0.0.1"
    return f"http://[{host.strip('[]')}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def add_parser(sub: Any) -> None:
    """Registers `serve` and its flags."""
    s = sub.add_parser("serve", help="a web page to draw a digit or upload an image and watch a model read it",
                       description="Serve a web page and its JSON API (needs zerograd[serve]): draw a digit for a "
                                   "model trained on MNIST; upload an image (PNG, JPEG, ...; drag and drop) for an "
                                   "image model, trained on a folder of your own images or CIFAR-10, which answers "
                                   "with its class names. Both show a saliency map.")
    s.add_argument("models", nargs="*", metavar="MODEL",
                   help="model file or pretrained:NAME, one or more, digit and image models alike; the page "
                        "switches between them (default: the most accurate pretrained model)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    add_debug(s)


def run(args: argparse.Namespace) -> int:
    """Serve the page and API for args.models on args.host:args.port until interrupted; returns the exit code."""
    from ..serve.app import create_app  # raises a ZerogradError naming zerograd[serve] when FastAPI is missing

    try:
        import uvicorn
    except ImportError as exc:
        raise ZerogradError('zerograd serve needs uvicorn, which is not installed: '
                            'pip install "zerograd[serve]"') from exc
    if not 0 <= args.port <= 65535:
        raise ZerogradError(f"--port must be between 0 and 65535 (0 picks a free port), got {args.port}")
    if args.models:
        models = load_served_models(args.models)
    else:
        best, left_out = best_pretrained()
        for name, err in left_out.items():
            print(f"zerograd serve: note: pretrained:{name} left out: {err}", file=sys.stderr)
        models = [best]
    app = create_app(models)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    if args.host in ALL_INTERFACES:
        print(f"zerograd serve: warning: --host {args.host or '(all)'} listens on all interfaces: anyone who can "
              "reach this machine can use the page; --host 127.0.0.1 keeps it to this machine", file=sys.stderr)
    for m in models:
        acc = "unknown" if m.test_accuracy is None else f"{m.test_accuracy:.4f}"
        images = "" if m.kind == "digits" else (f"; {m.image_size[0]}x{m.image_size[1]} "
                                                 f"{'colour' if m.channels == 3 else 'grey'} images, "
                                                 f"{len(m.classes)} classes")
        print(f"model {m.name} ({m.arch}, test accuracy {acc}{images})")
    print(f"open {_url(args.host, port)} (Ctrl-C stops)", flush=True)
    # No lifespan: the app needs no startup or shutdown hooks, and a cancelled lifespan task logs a traceback.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down gracefully, then re-raised the Ctrl-C it caught: the normal way to stop
    finally:
        sock.close()
    print("zerograd serve: stopped", file=sys.stderr)
    return 0
