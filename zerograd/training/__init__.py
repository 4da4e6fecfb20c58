"""Training (`zerograd.training`): the loop and what surrounds it, and `train`, what `zerograd train` does.

- `loop`: fit (sharing a run among processes through zerograd.distributed.Parallel), TrainingDiverged
- `metrics`: predict_logits, evaluate, confusion_matrix
- `history`: EpochRecord, History (saved as JSON and CSV)
- `reporters`: progress reporting (silent, a line per epoch, a tqdm bar, TensorBoard)
- `data`: a run's data and the record of it (class names, channels, size, mean and std) its model file keeps
- `checkpoint`: save_checkpoint, load_checkpoint (resume exactly where a run stopped)
- `recipe`: TrainConfig (every setting of `zerograd train`, one validate()) and train(config) -> TrainResult
"""

from ..distributed import Parallel  # fit's hooks, here as before
from .checkpoint import load_checkpoint, save_checkpoint
from .history import EpochRecord, History, train_seconds
from .loop import TrainingDiverged, fit
from .metrics import confusion_matrix, evaluate, predict_logits
from .recipe import TrainConfig, TrainResult, train
from .reporters import LineReporter, Reporter, Reporters, TensorBoardReporter, TqdmReporter, default_reporter

__all__ = [
    "EpochRecord", "History", "LineReporter", "Parallel", "Reporter", "Reporters", "TensorBoardReporter",
    "TqdmReporter", "TrainConfig", "TrainResult",
    "TrainingDiverged", "confusion_matrix", "default_reporter", "evaluate", "fit", "load_checkpoint",
    "predict_logits", "save_checkpoint", "train", "train_seconds",
]
