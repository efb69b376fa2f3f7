"""Typed configuration of a training run and of the server. The CLI is generated from these fields.

The defaults that depend on the task (the model, epochs, learning rate, ...) come from
``TRAINING_DEFAULTS`` in the task's ``data`` package, and ``input_size`` from its ``INPUT_SIZE``.
A model's own training recipe (``register_model("name", learning_rate=...)``) comes first for the
settings it names: ``train --model NAME`` and the test battery read the same place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .data import INPUT_SIZE
from .data import TRAINING_DEFAULTS as DEFAULTS
from .models import available_models, model_recipe, pretrained_models, takes_no_pretrained
from .models.registry import RECIPE_SETTINGS

# Inputs read and predicted at a time by `predict` and `evaluate` (their --batch-size).
PREDICT_BATCH = DEFAULTS.get("predict_batch_size", 256)
# Floating-point types training can run in (TrainConfig.precision), by name.
PRECISIONS = ("float32", "float64")
# Which epoch's weights a run keeps (TrainConfig.keep).
KEEPS = ("best", "last")


@dataclass
class TrainConfig:
    data: str | None = field(default=None, metadata={"help": "labelled data (default: the embedded dataset)"})
    output_dir: str | None = field(
        default=None,
        metadata={"help": "this run's folder, exactly (default: a new folder under runs_dir, never an earlier run's)"},
    )
    runs_dir: str = field(default="runs", metadata={"help": "where new run folders and the `latest` link go"})
    name: str | None = field(
        default=None, metadata={"help": "the run folder's name under runs_dir (default: UTC time and a config hash)"}
    )
    model: str = field(
        default=DEFAULTS["model"], metadata={"help": f"registered model: {', '.join(available_models())}"}
    )
    hidden_size: int = field(default=DEFAULTS["hidden_size"], metadata={"help": "width of the hidden layers"})
    depth: int = field(default=DEFAULTS["depth"], metadata={"help": "number of hidden layers or blocks"})
    dropout: float = field(default=DEFAULTS["dropout"], metadata={"help": "dropout probability"})
    pretrained: str | None = field(
        default=None,
        metadata={
            "help": "start from this pretrained model (a folder written by save_pretrained, or a Hugging Face hub "
            "name where the machine is online); it brings its own preprocessing. Models that take one: "
            + (", ".join(pretrained_models()) or "none in this project")
        },
    )
    freeze_backbone: bool = field(
        default=False, metadata={"help": "train only the head on a frozen pretrained backbone (with --pretrained)"}
    )
    backbone_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "learning rate of a pretrained backbone (default: a tenth of --learning-rate; the head takes that)",
            "type": float,
        },
    )
    epochs: int = field(default=DEFAULTS["epochs"], metadata={"help": "passes over the training split"})
    keep: str = field(
        default="best",
        metadata={
            "help": "best or last: the weights the run scores, saves and serves are those of the epoch with the "
            "lowest validation loss (best: a model trained past its best is not the one shipped), or the last epoch's"
        },
    )
    # The model's recipe, else the task's default (None: not given; see ``__post_init__``).
    batch_size: int = field(
        default=None,  # type: ignore[assignment]
        metadata={"help": "rows per optimiser step, over all processes", "type": int, "recipe": True},
    )
    learning_rate: float = field(
        default=None,  # type: ignore[assignment]
        metadata={"help": "AdamW learning rate", "type": float, "recipe": True},
    )
    weight_decay: float = field(
        default=None,  # type: ignore[assignment]
        metadata={"help": "AdamW weight decay", "type": float, "recipe": True},
    )
    val_fraction: float = field(
        default=DEFAULTS.get("val_fraction", 0.15),
        metadata={"help": "share of rows for validation (of the rows outside the test split, when the data names one)"},
    )
    test_fraction: float = field(
        default=DEFAULTS.get("test_fraction", 0.15),
        metadata={"help": "share of rows held out for testing, unless the data names its test rows"},
    )
    seed: int = field(default=0, metadata={"help": "seeds the split, the weights, dropout and shuffling"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    deterministic: bool = field(default=False, metadata={"help": "use only deterministic kernels"})
    amp: bool = field(default=False, metadata={"help": "mixed precision (autocast and grad scaling), CUDA only"})
    precision: str = field(
        default="float32",
        metadata={
            "help": "float32 or float64: the weights' and inputs' type while training. float64 takes about "
            "1.5x the time; runs whose batches sum in another order (torchrun, another CPU) then agree to "
            "about 1e-12 instead of drifting apart"
        },
    )
    num_workers: int = field(
        default=DEFAULTS.get("num_workers", -1),
        metadata={
            "help": "DataLoader worker processes that read and decode batches "
            "(-1: the CPUs of each training process but two, at most 4; 0: read in the training process)"
        },
    )
    input_size: int = field(
        default=INPUT_SIZE[0] if INPUT_SIZE else 0,
        metadata={"help": INPUT_SIZE[1] if INPUT_SIZE else "size of one model input: this task takes it from the data"},
    )
    resume: str | None = field(default=None, metadata={"help": "checkpoint to resume training from"})
    # On by default: a run from `train` always has its report. Off (--no-report) it saves the
    # drawing, a second or so, where nobody looks at the pictures (the tests' many short runs).
    report: bool = field(
        default=True,
        metadata={
            "help": "write report.html and its pictures (curves, confusion matrix, calibration) to the run folder"
        },
    )

    track: bool = field(
        default=True,
        metadata={"help": "log the run to MLflow where the track extra is installed (--no-track: not)"},
    )
    tracking_uri: str | None = field(
        default=None,
        metadata={
            "help": "MLflow tracking URI (default: MLFLOW_TRACKING_URI where set, else the SQLite database "
            "mlflow.db beside the run folder)"
        },
    )

    def __post_init__(self) -> None:
        recipe = model_recipe(self.model) if self.model in available_models() else {}
        for name in RECIPE_SETTINGS:
            if getattr(self, name) is None:  # not given: the model's recipe, else the task's default
                setattr(self, name, recipe.get(name, DEFAULTS[name]))
        problems = []
        if self.model not in available_models():
            problems.append(f"model '{self.model}' is not registered (available: {available_models()})")
        for name in ("hidden_size", "depth", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        if self.backbone_learning_rate is not None and self.backbone_learning_rate <= 0:
            problems.append(f"backbone_learning_rate must be positive, got {self.backbone_learning_rate}")
        refusal = takes_no_pretrained(self.model) if self.model in available_models() else None
        if self.pretrained is not None and refusal:
            problems.append(refusal)
        if self.freeze_backbone and self.pretrained is None:
            problems.append("freeze_backbone freezes a pretrained backbone: give --pretrained too")
        if self.backbone_learning_rate is not None and (self.pretrained is None or self.freeze_backbone):
            problems.append("backbone_learning_rate trains a pretrained backbone: give --pretrained, not frozen")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be non-negative, got {self.weight_decay}")
        if not (
            0 < self.val_fraction < 1 and 0 < self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1
        ):
            problems.append("val_fraction and test_fraction must be in (0, 1) and sum to less than 1")
        if self.num_workers < -1:
            problems.append(f"num_workers must be -1 (automatic) or more, got {self.num_workers}")
        if self.input_size < 0:
            problems.append(f"input_size must be non-negative, got {self.input_size}")
        if self.input_size and INPUT_SIZE is None:
            problems.append(
                f"input_size {self.input_size}: this task takes its input size from the data; leave it at 0"
            )
        if self.keep not in KEEPS:
            problems.append(f"keep must be one of {', '.join(KEEPS)}, got '{self.keep}'")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        elif self.amp and self.precision != "float32":
            problems.append(f"amp (mixed precision) starts from float32 weights, not {self.precision}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            problems.append(f"device must be auto, cpu, cuda or cuda:N, got '{self.device}'")
        if problems:
            raise ValueError("invalid configuration: " + "; ".join(problems))

    def model_options(self) -> dict[str, Any]:
        """Keyword options every registered model accepts besides num_classes and the input sizes."""
        return {"hidden_size": self.hidden_size, "depth": self.depth, "dropout": self.dropout}

    def backbone_rate(self) -> float:
        """The learning rate of a pretrained backbone: ``backbone_learning_rate``, else a tenth of the head's."""
        return self.backbone_learning_rate if self.backbone_learning_rate is not None else self.learning_rate / 10

    def preprocessing_options(self) -> dict[str, Any]:
        """Keyword options of the task's ``Preprocessor`` (``input_size`` where the task has one)."""
        return {} if INPUT_SIZE is None else {"input_size": self.input_size}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class ServeConfig:
    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on (0.0.0.0: every interface)"})
    port: int = field(default=8000, metadata={"help": "port to listen on (0: any free port)"})
    max_request_bytes: int = field(
        default=8 * 2**20, metadata={"help": "largest request body accepted; a larger one gets 413"}
    )
    max_batch: int = field(default=256, metadata={"help": "most items in one request; more get 413"})
    max_decoding: int = field(
        default=2,
        metadata={
            "help": "requests whose items are decoded and predicted at once (others wait): what bounds the memory "
            "that decoding takes"
        },
    )

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be in 0..65535, got {self.port}")
        for name in ("max_request_bytes", "max_batch", "max_decoding"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if problems:
            raise ValueError("invalid configuration: " + "; ".join(problems))
