"""Memory and speed on data of two sizes ten times apart: a benchmark, not a test tier.

``nox -s scale`` (or ``python benchmarks/scale.py``) makes a dataset of this project's task at
two sizes from the embedded data{% if cookiecutter.task == "image" %} (a folder of 64x64 JPEGs, the digits enlarged){% elif cookiecutter.task == "text" %} (a CSV of texts){% else %} (a CSV and a Parquet table){% endif %}, then measures, each
in a process of its own:

- the peak resident memory (and the wall time) of ``train --epochs 1`` and of ``predict`` on
  each size: at ten times the data, memory should stay within 1.25 times;
- under torchrun with two processes, how many items each process reads, during fitting and
  during the epoch: each reads its own share of every batch;
{% if cookiecutter.task == "image" -%}
- the items per second of one training epoch on the larger folder, against a bare loop (a
  plain torch DataLoader over the same files, with the same workers, batch size and model);
{% endif -%}

and prints a table (``--json FILE`` writes the figures too). Memory is read from the operating
system (``wait4``), so it counts everything the process held, the libraries included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PACKAGE = "{{ cookiecutter.package_name }}"
SIZES = {% if cookiecutter.task == "image" %}(1_000, 10_000){% elif cookiecutter.task == "text" %}(30_000, 300_000){% else %}(100_000, 1_000_000){% endif %}
GOAL = 1.25  # peak memory at ten times the data, as a multiple of the smaller run's


def make_dataset(rows: int, folder: Path, seed: int = 0) -> Path:
    """A labelled dataset of ``rows`` examples drawn (with repeats) from the embedded one, in ``folder``."""
    from {{ cookiecutter.package_name }}.data import load_examples

    examples = load_examples()
    picks = np.random.default_rng(seed).integers(0, len(examples), rows)
{%- if cookiecutter.task == "image" %}
    from PIL import Image

    path = folder / f"images-{rows}"
    for number, (image, label) in enumerate(zip(examples.read(picks), examples.labels[picks], strict=True)):
        (path / label).mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image).resize((64, 64), Image.Resampling.BILINEAR)
        picture.save(path / label / f"{number:06d}.jpg", quality=90)
    return path
{%- elif cookiecutter.task == "text" %}
    import pandas as pd

    path = folder / f"texts-{rows}.csv"
    pd.DataFrame({"text": examples.read(picks).to_numpy(), "label": examples.labels[picks]}).to_csv(path, index=False)
    return path
{%- else %}
    from {{ cookiecutter.package_name }}.data import write_examples

    return write_examples(examples.subset(picks), folder / f"table-{rows}.csv")
{%- endif %}


def peak_memory(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(peak resident memory in MB, wall seconds) of a command, which must succeed."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"`{' '.join(args)}` failed (exit status {os.waitstatus_to_exitcode(status)})")
    return usage.ru_maxrss / 1024, seconds


def measure_memory(data: Path, work: Path) -> dict[str, float]:
    """Peak memory and time of `train --epochs 1` and of `predict` on ``data``."""
    cli = [sys.executable, "-m", PACKAGE]
    run = work / f"run-{data.stem}"
    train_mb, train_s = peak_memory(
        *cli, "train", "--data", str(data), "--epochs", "1", "--output-dir", str(run), "--no-report", cwd=work
    )
    predictions = work / f"predictions-{data.stem}.csv"
    predict_mb, predict_s = peak_memory(
        *cli, "predict", "--checkpoint", str(run / "checkpoint.pt"), "--input", str(data), "--output", str(predictions),
        cwd=work,
    )  # fmt: skip
    return {"train_mb": train_mb, "train_s": train_s, "predict_mb": predict_mb, "predict_s": predict_s}


def count_reads(data: Path, output: Path) -> None:
    """Under torchrun: one epoch on ``data``, counting the items each process reads to fit the
    preprocessing, to prepare its datasets (where the task transforms them once), and in the epoch."""
    from {{ cookiecutter.package_name }}.config import TrainConfig
    from {{ cookiecutter.package_name }}.testing import count_reads as counting
    from {{ cookiecutter.package_name }}.training import fit

    with counting() as counts:
        result = fit(TrainConfig(data=str(data), epochs=1, output_dir=str(output), report=False, num_workers=0))
    rows = {"train": len(result.split.train), "val": len(result.split.val), "test": len(result.split.test)}
    (output / f"reads-{os.environ.get('RANK', 0)}.json").write_text(json.dumps({**counts, "rows": rows}))


{%- if cookiecutter.task == "image" %}


def throughput(data: Path, workers: int, rounds: int = 2) -> dict[str, float]:
    """Items per second of one training epoch on ``data``: the project's loop against a bare one."""
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    from {{ cookiecutter.package_name }}.config import TrainConfig
    from {{ cookiecutter.package_name }}.data import Preprocessor, load_examples
    from {{ cookiecutter.package_name }}.models import build_for
    from {{ cookiecutter.package_name }}.training import classification_loss, make_loader, train_one_epoch

    config = TrainConfig(data=str(data))
    examples = load_examples(data)
    preprocessor = Preprocessor().fit(examples)
    mean, std = preprocessor.state_dict()["mean"][0], preprocessor.state_dict()["std"][0]
    files = [data / name for name in examples.items.names.to_pylist()]
    labels = torch.as_tensor(preprocessor.encode_labels(examples.labels))

    class Bare(Dataset):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, index: int):
            with Image.open(files[index]) as image:
                pixels = np.asarray(image.convert("L"), dtype=np.float32) / 255
            return torch.from_numpy((pixels - mean) / std)[None], labels[index]

    def model():
        torch.manual_seed(0)
        return build_for(config.model, preprocessor, **config.model_options())

    def epoch(loader) -> float:
        net = model()
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate)
        started = time.perf_counter()
        train_one_epoch(net, loader, classification_loss(), optimizer, "cpu")
        return len(files) / (time.perf_counter() - started)

    ours = make_loader(
        preprocessor.dataset(examples, train=True),
        config.batch_size,
        shuffle=True,
        seed=0,
        num_workers=workers,
        collate_fn=preprocessor.collate,
        persistent=True,
    )
    bare = DataLoader(
        Bare(), batch_size=config.batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    epoch(ours), epoch(bare)  # start the workers, warm the page cache
    project = [epoch(ours) for _ in range(rounds)]
    plain = [epoch(bare) for _ in range(rounds)]
    return {"project_items_per_s": max(project), "bare_items_per_s": max(plain), "workers": workers}
{%- endif %}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs=2, default=SIZES, help="the two dataset sizes (default: %(default)s)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--count-reads", nargs=2, metavar=("DATA", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.count_reads:  # a torchrun process (below)
        count_reads(Path(args.count_reads[0]), Path(args.count_reads[1]))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the runs' memory, not a fight over threads
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="scale-") as scratch:
        work = Path(scratch)
        datasets = [make_dataset(size, work) for size in args.sizes]
        for size, data in zip(args.sizes, datasets, strict=True):
            figures[str(size)] = measure_memory(data, work)
            print(f"{size:>9,} examples: {figures[str(size)]}", flush=True)
        small, large = (figures[str(size)] for size in args.sizes)
        for command in ("train", "predict"):
            ratio = large[f"{command}_mb"] / small[f"{command}_mb"]
            figures[f"{command}_memory_ratio"] = ratio
            print(f"{command}: peak memory x{ratio:.2f} for x{args.sizes[1] / args.sizes[0]:g} the data (goal: {GOAL})")
        output = work / "torchrun"
        output.mkdir()
        subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", __file__,
             "--count-reads", str(datasets[1]), str(output)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        reads = [json.loads((output / f"reads-{rank}.json").read_text()) for rank in (0, 1)]
        figures["torchrun_reads"] = reads
        for rank, counted in enumerate(reads):
            print(
                f"torchrun rank {rank}: read {counted['fit']} items to fit the preprocessing, "
                f"{counted['prepare']} to prepare the datasets, {counted['epochs']} in the epoch "
                f"(split: {counted['rows']})"
            )
{%- if cookiecutter.task == "image" %}
        workers = max(1, min(4, (os.cpu_count() or 2) - 1))
        figures["throughput"] = throughput(datasets[1], workers)
        speed = figures["throughput"]
        print(
            f"one epoch on {args.sizes[1]:,} images, {workers} workers: {speed['project_items_per_s']:.0f} items/s, "
            f"a bare loop {speed['bare_items_per_s']:.0f} items/s "
            f"(x{speed['project_items_per_s'] / speed['bare_items_per_s']:.2f})"
        )
{%- endif %}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
