"""Frames 0, 20, 40, 70 of two prompts, default preset vs guided coarse stages, as one PNG (rows: prompt x sampler)."""
import sys
import numpy as np
import torch
from PIL import Image
from helios_core.config import apply_overrides
from helios_core.presets import load_preset
from helios_core.engine import HeliosEngine
from helios_core.request import GenerationRequest
torch.set_num_threads(2)
PROMPTS = ["a large red circle moving left on a blue background",
           "a large yellow square moving right on a green background"]
VARIANTS = {"default": {}, "cfg2-stages01": {"sampler.guidance_scale": 2.0, "sampler.guidance_stages": [0, 1]}}
PICK = [0, 20, 40, 70]
rows = []
engine = None
for prompt in PROMPTS:
    for name, values in VARIANTS.items():
        config = apply_overrides(load_preset("default"), {"video.num_frames": 72, **values})
        engine = engine or HeliosEngine.load(None, config.runtime)
        frames = np.concatenate([c.pixel_frames for c in engine.generate(GenerationRequest(config=config, seed=1, prompt=prompt))])
        rows.append(np.concatenate([frames[i] for i in PICK], axis=1))
        print(prompt, name, frames.shape, flush=True)
sheet = np.concatenate(rows, axis=0)
Image.fromarray(sheet).save(sys.argv[1])
