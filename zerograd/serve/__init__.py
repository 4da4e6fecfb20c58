"""`zerograd serve`: a web page to draw a digit or upload an image and watch a model read it.

The FastAPI app lives in zerograd.serve.app (extra "serve"). Importing this package does not import FastAPI;
`from zerograd.serve.app import create_app` does, and names `pip install "zerograd[serve]"` when it is missing.
"""

from .inference import (
    ServedModel,
    best_pretrained,
    load_served_model,
    load_served_models,
    predict_bytes,
    predict_digit,
    predict_image,
)

__all__ = ["ServedModel", "best_pretrained", "load_served_model", "load_served_models", "predict_bytes",
           "predict_digit", "predict_image"]
