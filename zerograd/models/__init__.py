"""Ready-made networks (`zerograd.models`): the book's MLPs and CNNs, their configs, and model files.

- `mlp`: MLP (chapters 3-6) and TwoLayerNet (chapters 4-5)
- `cnn`: SimpleConvNet (chapter 7) and DeepConvNet (chapter 8)
- `resnet`: ResNet-20 and its BasicBlock (chapter 8's deeper networks: residual connections, He et al. 2016)
- `book`: the book's own networks and the loaders of its weight pickles
- `config`: build_model(config), the architecture a model file names, and the check that it fits the file
- `inputs`: the input size or shape a model takes, data checked against it, new images prepared for it
- `hub`: pretrained models by name, model files saved and loaded (.safetensors, .onnx), ONNX export of a file
"""

from ..io import CHECKPOINT_MODEL_PREFIX, checkpoint_model_state
from .book import BOOK_ARCHS, book_ch3, book_model, load_book_ch3_weights, load_book_deep_cnn, load_book_simple_cnn
from .cnn import DeepConvNet, SimpleConvNet
from .config import ARCHITECTURES, build_model, check_config_fits
from .hub import (
    BOOK_PRETRAINED_ACCURACY,
    PRETRAINED_MODELS,
    export_model_file,
    list_pretrained,
    load_model,
    load_pretrained,
    save_model,
)
from .inputs import (
    check_input,
    class_names,
    example_batch,
    image_info,
    input_shape,
    input_size,
    normalize,
    prepare_images,
)
from .mlp import ACTIVATIONS, MLP, TwoLayerNet
from .resnet import BasicBlock, ResNet

__all__ = [
    "ACTIVATIONS", "ARCHITECTURES", "BOOK_ARCHS", "BOOK_PRETRAINED_ACCURACY", "CHECKPOINT_MODEL_PREFIX",
    "PRETRAINED_MODELS", "DeepConvNet", "MLP", "SimpleConvNet", "TwoLayerNet", "book_ch3", "book_model",
    "build_model", "check_config_fits", "check_input", "class_names", "checkpoint_model_state", "example_batch",
    "export_model_file", "image_info", "input_shape", "input_size", "list_pretrained", "load_book_ch3_weights",
    "load_book_deep_cnn", "load_book_simple_cnn", "load_model", "load_pretrained", "normalize", "prepare_images",
    "save_model", "BasicBlock", "ResNet",
]
