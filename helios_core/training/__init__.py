"""Training Helios: data preparation, the base / mid / distilled stages, exact resume, and export.

    prepare_dataset(manifest, out_dir, model_path=..., height=..., width=...)   videos -> cached latent shards
    config = load_train_config("mid", {"optim.lr": 1e-4})                       preset + --set overrides
    train(config, model_path=..., data_dir=..., out_dir=..., resume=False)      checkpoints + log.jsonl
    export_model(out_dir, base_model_path, out_path)                            LoRA merged -> model folder
"""

from helios_core.training.config import TrainConfig, load_train_config
from helios_core.training.data_prepare import PrepareReport, SkippedVideo, prepare_dataset
from helios_core.training.dataset import LatentChunkDataset, SampleOrder, TrainingBatch, TrainingSample
from helios_core.training.export import export_model
from helios_core.training.trainer import StepInfo, TrainResult, train

__all__ = [
    "LatentChunkDataset",
    "PrepareReport",
    "SampleOrder",
    "SkippedVideo",
    "StepInfo",
    "TrainConfig",
    "TrainResult",
    "TrainingBatch",
    "TrainingSample",
    "export_model",
    "load_train_config",
    "prepare_dataset",
    "train",
]
