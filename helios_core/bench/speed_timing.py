"""Per-chunk timing of one generate call, shared by our engine and diffusers' pipeline so both are measured alike.

`ChunkRecorder` hooks the transformer (forward pre/post hooks) and wraps `vae.decode` (both pipelines call
`self.vae.decode` once per chunk) and stamps the device timeline: CUDA events on a GPU, so nothing is
synchronised inside the measured call and the numbers are GPU time; `time.perf_counter` on a CPU.
- a chunk runs from the end of the previous chunk's VAE decode (or the start stamp, for chunk 0) to the end of its
  own decode, so host stalls between GPU work (block noise drawn on the CPU, copies to the host) land in the chunk
  that waits on them;
- transformer time is split by pyramid stage, read off the noisy latents' width (stage s of S runs at
  full width / 2^(S-1-s)); each forward's FLOPs are counted from its input shapes (`speed_flops`);
- "rest" = chunk - transformer - VAE: scheduler steps, pyramid resampling, block noise, history, copies.
Events are only read after the caller synchronises (`summary`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from helios_core.bench.speed_flops import forward_flops, forward_tokens


class Clock:
    """Time stamps on the device's timeline: CUDA events on a GPU, host perf_counter on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def stamp(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start: Any, end: Any) -> float:
        return start.elapsed_time(end) / 1000.0 if self.cuda else end - start

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


@dataclass
class _Forward:
    chunk: int
    stage: int
    start: Any
    end: Any | None
    flops: float
    tokens: int


class ChunkRecorder:
    """Install with `with ChunkRecorder(...) as rec:`; call `rec.start()` right before the timed call."""

    def __init__(self, transformer: torch.nn.Module, vae: torch.nn.Module, clock: Clock, *, latent_width: int,
                 num_stages: int, text_tokens: int) -> None:
        self.transformer, self.vae, self.clock = transformer, vae, clock
        self.latent_width, self.num_stages, self.text_tokens = latent_width, num_stages, text_tokens
        self.config = dict(transformer.config)
        self._handles: list[Any] = []
        self.start()

    # -- installing --------------------------------------------------------------------------------------------------
    def __enter__(self) -> ChunkRecorder:
        self._handles.append(self.transformer.register_forward_pre_hook(self._before_forward, with_kwargs=True))
        self._handles.append(self.transformer.register_forward_hook(self._after_forward))
        # An instance attribute shadows the method; removed on exit.
        self.vae.decode = self.timed_decode(self.vae.decode)
        return self

    def timed_decode(self, decode: Any) -> Any:
        """`decode` wrapped so each call is one chunk's VAE time. Our side wraps its codec with it when the codec does
        not go through the shared `vae.decode` (whole-chunk decode, or a VAE copy in another dtype)."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = self.clock.stamp()
            output = decode(*args, **kwargs)
            self.decodes.append((start, self.clock.stamp()))
            return output

        return timed

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.vae.__dict__.pop("decode", None)

    def start(self) -> None:
        self.forwards: list[_Forward] = []
        self.decodes: list[tuple[Any, Any]] = []
        self.t0 = self.clock.stamp()

    # -- hooks -------------------------------------------------------------------------------------------------------
    def _stage_of(self, noisy_width: int) -> int:
        return self.num_stages - 1 - round(math.log2(self.latent_width / noisy_width))

    def _before_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        shapes = {k: tuple(kwargs[k].shape) if kwargs.get(k) is not None else None
                  for k in ("latents_history_short", "latents_history_mid", "latents_history_long")}
        tokens = forward_tokens(self.config, tuple(hidden.shape), shapes["latents_history_short"],
                                shapes["latents_history_mid"], shapes["latents_history_long"], self.text_tokens)
        flops = forward_flops(self.config, tokens).total * hidden.shape[0]
        self.forwards.append(_Forward(len(self.decodes), self._stage_of(hidden.shape[-1]), self.clock.stamp(), None,
                                      flops, tokens.total))

    def _after_forward(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        self.forwards[-1].end = self.clock.stamp()

    # -- reading (after a synchronize) -------------------------------------------------------------------------------
    def chunks(self) -> list[dict[str, Any]]:
        """One record per decoded chunk: seconds per component, forwards and FLOPs per stage."""
        records = []
        previous_end = self.t0
        for index, (decode_start, decode_end) in enumerate(self.decodes):
            stage_seconds = [0.0] * self.num_stages
            stage_forwards = [0] * self.num_stages
            stage_flops = [0.0] * self.num_stages
            for fwd in self.forwards:
                if fwd.chunk == index:
                    stage_seconds[fwd.stage] += self.clock.seconds(fwd.start, fwd.end)
                    stage_forwards[fwd.stage] += 1
                    stage_flops[fwd.stage] += fwd.flops
            chunk_s = self.clock.seconds(previous_end, decode_end)
            vae_s = self.clock.seconds(decode_start, decode_end)
            records.append({
                "chunk_s": chunk_s,
                "transformer_s_by_stage": stage_seconds,
                "transformer_s": sum(stage_seconds),
                "vae_s": vae_s,
                "rest_s": chunk_s - sum(stage_seconds) - vae_s,
                "forwards_by_stage": stage_forwards,
                "transformer_flops_by_stage": stage_flops,
            })
            previous_end = decode_end
        return records
