"""`helios generate --prompts FILE`: one video per item of a prompts file, resumable, unattended.

- The file is parsed and checked as a whole first (`helios_core.batch`): a malformed line or an unsafe output name
  stops everything with exit 2 before any work, because a half-understood batch file should not run at all.
- `--output` is the output FOLDER (default `outputs/`); each item writes `FOLDER/<its name>.mp4` + `.json`.
- Items whose final `.mp4` exists are skipped (resume after a crash); `--overwrite` redoes them. A `.partial.mp4`
  left by a crash belongs to an unfinished item, which is why pending items may replace their own partial file.
- Seeds: the item's `seed`, else `--seed` (the same for every item, like the official scripts), else a fresh random
  seed per item; each is recorded in the item's sidecar.
- Returns the exit code: 0 when every item is done or skipped, 1 when any failed.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from helios_cli.console import Output
from helios_cli.execute import Job, report_interrupted, run_batch
from helios_cli.gpus import multi_gpu_wanted, run_prompts_on_gpus
from helios_cli.inputs import DEFAULT_OUTPUT_DIR, load_image
from helios_cli.options import CommonOptions
from helios_cli.resolve import resolve_config, with_item_values
from helios_core.batch import BatchItem, load_prompts_file, split_done
from helios_core.config import GenerationConfig
from helios_core.errors import ConfigError, UserInputError
from helios_core.request import GenerationRequest
from helios_core.runner import RunInterrupted

EXIT_ITEM_FAILED = 1
EXIT_INTERRUPTED = 130


def run_prompts_file(path: Path, common: CommonOptions, out: Output) -> int:
    items = load_prompts_file(path)
    output_dir = batch_output_dir(common)
    base_config = resolve_config(common.config_flags())
    if multi_gpu_wanted(common):
        return run_prompts_on_gpus(path, common, out)
    if common.overwrite:
        pending, done = items, []
    else:
        pending, done = split_done(items, output_dir)
    jobs = [item_job(item, base_config, common, output_dir, path) for item in pending]
    try:
        summary = run_batch(jobs, [str(output_dir / item.output_name) for item in done], common.model, out)
    except RunInterrupted as stop:
        report_interrupted(stop.result, out)
        out.warning("batch interrupted; run the same command again to resume")
        return EXIT_INTERRUPTED
    return EXIT_ITEM_FAILED if summary.failed else 0


def batch_output_dir(common: CommonOptions) -> Path:
    """--output as the batch's output folder (default outputs/); a file path is refused."""
    output_dir = common.output if common.output is not None else DEFAULT_OUTPUT_DIR
    if output_dir.suffix.lower() == ".mp4" or output_dir.is_file():
        raise ConfigError(f"with --prompts, --output is a folder for the videos, not a file: {output_dir}")
    return output_dir


def item_job(item: BatchItem, base: GenerationConfig, common: CommonOptions, output_dir: Path, path: Path) -> Job:
    seed = item.seed if item.seed is not None else common.seed
    if seed is None:
        seed = secrets.randbelow(2**32)
    source = f"prompts file {path} line {item.line}"

    def build() -> GenerationRequest:
        try:
            config = with_item_values(base, item.overrides, item.seconds, item.frames)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
        image = None
        if item.image is not None:
            try:
                image = load_image(item.image, config)
            except UserInputError as err:
                raise type(err)(f"{source}: {err}") from None
        return GenerationRequest(config=config, seed=seed, prompt=item.prompt, image=image)

    return Job(
        label=item.output_name,
        output=output_dir / item.output_name,
        # Only pending items get here (or all with --overwrite): their final .mp4 does not exist, so overwriting
        # can only replace the .partial.mp4 and sidecar a crash left behind for this same item.
        overwrite=True,
        build=build,
        metadata={
            "model_path": str(common.model.absolute()) if common.model is not None else None,
            "inputs": {"image": str(item.image.absolute())} if item.image is not None else {},
            "batch": {"prompts_file": str(path.absolute()), "line": item.line, "index": item.index},
        },
        source=source,
    )
