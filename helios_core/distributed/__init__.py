"""Past one GPU: data-parallel batches and context-parallel (Ulysses) generation of one video.

- `world`: one process of a multi-process run (rank, device, the torch.distributed process group), entered the
  same way whether `launch_workers` or `torchrun` started it;
- `launch`: start N worker processes for the user (torch.multiprocessing, spawn), torchrun-style environment;
- `sharding`: which pending batch item goes to which rank (item i -> rank i % N, fixed once after resume filtering);
- `context_parallel`: diffusers' context parallelism on the Helios transformer (plan, checks, enabling).

Nothing here prints; the CLI (`helios_cli/gpus.py`) decides what each rank shows.
"""
