"""`zerograd serve`: a draw-a-digit web page. The FastAPI app lives in zerograd.serve.app (extra "serve").

Importing this package does not import FastAPI; `from zerograd.serve.app import create_app` does, and
names `pip install "zerograd[serve]"` when it is missing.
"""

from .inference import ServedModel, best_pretrained, load_served_model, load_served_models, predict_digit

__all__ = ["ServedModel", "best_pretrained", "load_served_model", "load_served_models", "predict_digit"]
