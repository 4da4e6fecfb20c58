"""Files of weights, below the model and training code: everything here works on dicts of NumPy arrays.

- `model_file`: safetensors model files and checkpoints with zerograd's metadata (save_model_file, load_model_file)
- `pickle`: the book's .pkl weight files, read by an unpickler that rebuilds arrays and nothing else
- `pretrained`: the arrays shipped inside the package (the book's chapter-3 network)
- `atomic`: crash-safe writes (temporary file, fsync, rename) and an inter-process folder lock
- `image_file`: user image files opened safely with Pillow (the formats tried, the pixel limit, one error kind)
"""

from .atomic import atomic_open, atomic_write_bytes, folder_lock
from .image_file import MAX_PIXELS, open_image
from .model_file import (
    CHECKPOINT_MODEL_PREFIX,
    MODEL_FILE_FORMAT,
    MODEL_FILE_FORMAT_VERSION,
    checkpoint_model_state,
    load_model_file,
    require_safetensors,
    save_model_file,
)
from .pickle import MAX_PICKLE_INSTRUCTIONS, load_book_pickle
from .pretrained import PRETRAINED, list_pretrained, list_pretrained_arrays, load_pretrained_arrays

__all__ = [
    "CHECKPOINT_MODEL_PREFIX",
    "MAX_PICKLE_INSTRUCTIONS",
    "MAX_PIXELS",
    "MODEL_FILE_FORMAT",
    "MODEL_FILE_FORMAT_VERSION",
    "PRETRAINED",
    "atomic_open",
    "atomic_write_bytes",
    "checkpoint_model_state",
    "folder_lock",
    "list_pretrained",
    "list_pretrained_arrays",
    "load_book_pickle",
    "load_model_file",
    "load_pretrained_arrays",
    "open_image",
    "require_safetensors",
    "save_model_file",
]
