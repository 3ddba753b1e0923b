"""Does a transformer read which colour word plays which part? Its caption gap and role-swap gap, side by side.

    python dev/embedded/role_swap_gap.py NAME=MODEL_FOLDER,PREPARED_DATA [NAME=...] [--batches 8] [--batch-size 8]

For each model, on fixed batches of its prepared world data (text-to-video: history and anchor zeroed; mid stage):
- caption_gap: each sample given another sample's caption (`evaluate_caption_gap`): does it read its text at all?
- role_swap_gap: each sample given its own caption with the first object's and the background's colours exchanged,
  encoded by the model's own text encoder (`evaluate_role_swap_gap`): does it read which word is which? A model
  that reads its prompt as a bag of words scores ~0 here however large its caption gap.
The data must be prepared with the model's own text encoder (its `text` is the "own" side). The last line printed
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from helios_core.training import load_train_config
from helios_core.training.evaluate import evaluate_caption_gap, evaluate_role_swap_gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="NAME=MODEL_FOLDER,PREPARED_DATA")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    config = load_train_config("mid", {"loop.batch_size": args.batch_size})
    results = {}
    for item in args.models:
        name, _, paths = item.partition("=")
        model, _, data = paths.partition(",")
        where = {"model_path": Path(model), "data_dir": Path(data), "num_batches": args.batches}
        swap = evaluate_role_swap_gap(config, **where)
        gap = evaluate_caption_gap(config, **where)
        results[name] = {"own_caption_loss": swap["own_caption_loss"], "caption_gap": gap["caption_gap"],
                         "role_swap_gap": swap["role_swap_gap"]}
        print(name, json.dumps(results[name]), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
