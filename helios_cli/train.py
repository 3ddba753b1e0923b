"""`helios data prepare`, `helios train` and `helios train export`: thin wrappers over helios_core.training.

Multi-GPU runs go through accelerate, not a home-made launcher: `accelerate launch -m helios_cli train ...`.
Every user mistake (unknown stage or key, missing folders) is a one-line error before any weights load; the last
stdout line of `train` and `data prepare` is one JSON object, so scripts can read the outcome.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from helios_cli.console import Output
from helios_core.errors import UserInputError

ModelOpt = Annotated[Path, typer.Option("--model", help="Diffusers-format model folder to start from.",
                                        envvar="HELIOS_MODEL")]


def _need_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise UserInputError(f"{what} {path} does not exist or is not a folder")


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Prepare training data.", no_args_is_help=True)
    train_app = typer.Typer(help="Train or fine-tune a Helios model (stages base, mid, distilled), or export one.",
                            invoke_without_command=True)

    @data_app.command("prepare")
    def prepare(
        manifest: Annotated[Path, typer.Argument(help="JSONL: path, caption, optional start/end/crop/fps.")],
        out: Annotated[Path, typer.Option("--out", help="Folder for the latent shards and index.")],
        model: ModelOpt,
        height: Annotated[int, typer.Option(help="Training height in pixels.")] = 384,
        width: Annotated[int, typer.Option(help="Training width in pixels.")] = 640,
        fps: Annotated[float, typer.Option(help="Frame rate videos are resampled to.")] = 24.0,
        workers: Annotated[int, typer.Option(help="Decoding threads.")] = 1,
        device: Annotated[str, typer.Option(help="Device for the VAE and text encoder.")] = "cpu",
        max_seq_len: Annotated[int, typer.Option(help="Text tokens per caption.")] = 512,
    ) -> None:
        """Decode, crop, cut into 33-frame windows, VAE-encode and cache videos with their caption embeddings."""
        from helios_core.training import prepare_dataset

        if not manifest.is_file():
            raise UserInputError(f"manifest {manifest} does not exist")
        _need_dir(model, "model folder")
        out_console = Output()
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeRemainingColumn(), console=out_console.human, disable=not out_console.interactive) as bar:
            task = bar.add_task("preparing", total=None)

            def on_progress(done: int, total: int, name: str) -> None:
                bar.update(task, completed=done, total=total, description=f"preparing {name}")

            report = prepare_dataset(manifest, out, model_path=model, height=height, width=width, fps=fps,
                                     workers=workers, device=device, max_sequence_length=max_seq_len,
                                     on_progress=on_progress)
        for skipped in report.skipped:
            out_console.warning(f"skipped {skipped.source}: {skipped.reason}")
        out_console.info(f"prepared {len(report.prepared)} videos ({report.total_chunks} chunks), "
                         f"{report.already_done} already done, {len(report.skipped)} skipped -> {report.out_dir}")
        print(json.dumps({"prepared": len(report.prepared), "already_done": report.already_done,
                          "skipped": [s.source for s in report.skipped], "chunks": report.total_chunks,
                          "out_dir": str(report.out_dir)}))

    @data_app.command("world")
    def world(
        out: Annotated[Path, typer.Option("--out", help="Folder for clips/ and manifest.jsonl.")],
        clips: Annotated[int, typer.Option(help="Number of clips.")] = 100,
        seconds: Annotated[float, typer.Option(help="Length of each clip.")] = 8.0,
        seed: Annotated[int, typer.Option(help="Dataset seed (each clip's scene follows from it).")] = 0,
        split: Annotated[str, typer.Option(help="train, or heldout (object combinations training never sees).")]
        = "train",
        height: Annotated[int, typer.Option(help="Frame height in pixels.")] = 128,
        width: Annotated[int, typer.Option(help="Frame width in pixels.")] = 256,
        workers: Annotated[int, typer.Option(help="Rendering processes.")] = 1,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing manifest and clips.")] = False,
    ) -> None:
        """Render the procedural world's captioned clips as MP4s plus a manifest for `helios data prepare`."""
        from helios_core.world import write_world_dataset

        out_console = Output()
        started = time.perf_counter()
        manifest = write_world_dataset(out, clips, seconds=seconds, height=height, width=width, seed=seed,
                                       split=split, overwrite=overwrite, workers=workers)
        out_console.info(f"rendered {clips} clips of {seconds:g} s in {time.perf_counter() - started:.1f} s "
                         f"-> {manifest}")
        print(json.dumps({"manifest": str(manifest), "clips": clips, "seconds": seconds, "seed": seed,
                          "split": split}))

    @train_app.callback()
    def train(
        ctx: typer.Context,
        stage: Annotated[str | None, typer.Option(help="base, mid, distilled, or a training YAML file.")] = None,
        model: Annotated[Path | None, typer.Option("--model", help="Model folder to start from.",
                                                   envvar="HELIOS_MODEL")] = None,
        data: Annotated[Path | None, typer.Option(help="Folder made by `helios data prepare`.")] = None,
        out: Annotated[Path | None, typer.Option(help="Run folder: checkpoints, log.jsonl, config.")] = None,
        sets: Annotated[list[str] | None, typer.Option("--set", help="Override a training key (repeatable).")]
        = None,
        resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    ) -> None:
        """helios train --stage mid --model M --data D --out RUN [--set optim.lr=1e-4] [--resume]"""
        if ctx.invoked_subcommand is not None:
            return
        from helios_core.presets import parse_set_option
        from helios_core.training import load_train_config, train as run_training

        if stage is None or model is None or data is None or out is None:
            raise UserInputError("helios train needs --stage, --model, --data and --out (see helios train --help)")
        config = load_train_config(stage, dict(parse_set_option(item) for item in sets or []))
        _need_dir(model, "model folder")
        _need_dir(data, "data folder")
        console = Output()
        started = time.perf_counter()
        with Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(), TextColumn("{task.fields[info]}"),
                      TimeRemainingColumn(), console=console.human, disable=not console.interactive) as bar:
            task = bar.add_task("train", total=None, info="")

            def on_step(info) -> None:
                text = f"loss {info.loss:.4f} lr {info.learning_rate:.2e} {1 / max(info.seconds, 1e-9):.2f} step/s"
                bar.update(task, completed=info.step, total=info.max_steps, info=text)
                if not console.interactive and not console.quiet:
                    console.info(f"step {info.step}/{info.max_steps} {text}")

            result = run_training(config, model_path=model, data_dir=data, out_dir=out, resume=resume,
                                  on_step=on_step)
        print(json.dumps({"out_dir": str(result.out_dir), "final_step": result.final_step,
                          "steps_done": result.steps_done, "last_loss": result.losses[-1] if result.losses else None,
                          "last_checkpoint": str(result.last_checkpoint) if result.last_checkpoint else None,
                          "seconds": round(time.perf_counter() - started, 3)}))

    @train_app.command("export")
    def export(
        run: Annotated[Path, typer.Argument(help="A run folder (its newest checkpoint) or one step_* checkpoint.")],
        base: Annotated[Path, typer.Option("--base", help="The model folder the run started from.")],
        out: Annotated[Path, typer.Option("--out", help="Where to write the merged model folder.")],
        ema: Annotated[bool, typer.Option("--ema", help="Export the EMA weights.")] = False,
        scheduler: Annotated[str, typer.Option(help="keep, unipc, unipc3 or dmd.")] = "keep",
        dtype: Annotated[str, typer.Option(help="bf16, fp16 or fp32.")] = "bf16",
        overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    ) -> None:
        """Merge LoRA into the transformer and write a diffusers-format model folder."""
        from helios_core.training import export_model

        _need_dir(run, "run folder")
        _need_dir(base, "model folder")
        path = export_model(run, base, out, use_ema=ema, scheduler=scheduler, dtype=dtype, overwrite=overwrite)
        Output().info(f"exported {path}")
        print(json.dumps({"model": str(path)}))

    app.add_typer(data_app, name="data")
    app.add_typer(train_app, name="train")
