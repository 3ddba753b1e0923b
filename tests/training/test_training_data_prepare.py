"""prepare_dataset: shards hold per-window latents, bad videos are skipped with a reason, runs resume, and nothing
named in the manifest can write outside the output folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SEQUENCE_LENGTH, SIZE, moving_square_frames, write_manifest
from safetensors import safe_open

from helios_core.errors import ConfigError
from helios_core.model.folder import load_model_folder
from helios_core.model.vae import LatentCodec, pixels_from_uint8
from helios_core.training import prepare_dataset
from helios_core.training.prepared_index import read_index
from helios_core.video import read_video, write_video


def test_shards_hold_each_window_encoded_on_its_own(prepared_dir: Path, video_dir: Path, tiny_model_dir: Path):
    prepared, skipped = read_index(prepared_dir)
    assert not skipped
    chunks = {Path(r["source"]).name: r["num_chunks"] for r in prepared.values()}
    assert chunks == {"a.mp4": 2, "b.mp4": 2, "c.mp4": 1}
    record = next(r for r in prepared.values() if Path(r["source"]).name == "a.mp4")
    with safe_open(prepared_dir / record["shard"], framework="pt") as handle:
        latents, first, text = (handle.get_tensor(k) for k in ("latents", "first_frame", "text"))
        metadata = handle.metadata()
    assert latents.shape == (2, 16, 9, SIZE // 8, SIZE // 8) and latents.dtype == torch.bfloat16
    assert first.shape == (16, 1, SIZE // 8, SIZE // 8)
    assert text.shape == (SEQUENCE_LENGTH, 32)
    assert json.loads(metadata["settings"])["height"] == SIZE and metadata["caption"] == "a red square moves right"
    # The second window, encoded alone, matches the stored chunk 1 (posterior mean vs sample: within the VAE's std).
    codec = LatentCodec(load_model_folder(tiny_model_dir, dtype=torch.float32, load_text_encoder=False).vae)
    frames = read_video(video_dir / "a.mp4").pixel_frames
    window = codec.encode(pixels_from_uint8(frames[33:66]), torch.Generator().manual_seed(0))[0]
    whole = codec.encode(pixels_from_uint8(frames[:66]), torch.Generator().manual_seed(0))[0]
    own_error = (latents[1].float() - window).abs().mean()
    assert own_error < (latents[1].float() - whole[:, -9:]).abs().mean()


def test_corrupt_and_short_videos_are_skipped_with_a_reason(tmp_path: Path, video_dir: Path, tiny_model_dir: Path):
    (tmp_path / "corrupt.mp4").write_bytes(b"this is not a video" * 50)
    write_video(tmp_path / "short.mp4", moving_square_frames(20, 3), 24)
    manifest = write_manifest(tmp_path / "m.jsonl", [
        {"path": "corrupt.mp4", "caption": "broken"},
        {"path": "short.mp4", "caption": "too short"},
        {"path": "missing.mp4", "caption": "not there"},
        {"path": str(video_dir / "c.mp4"), "caption": "a green square moves", "start": 0.0, "end": 1.5},
        {"caption": "no path"},
    ])
    messages = []
    report = prepare_dataset(manifest, tmp_path / "out", model_path=tiny_model_dir, height=SIZE, width=SIZE,
                             max_sequence_length=SEQUENCE_LENGTH, on_progress=lambda d, t, m: messages.append(m))
    reasons = {Path(s.source).name: s.reason for s in report.skipped}
    assert "Invalid data" in reasons["corrupt.mp4"]
    assert "too short: 20 frames" in reasons["short.mp4"]
    assert "not found" in reasons["missing.mp4"]
    assert any("needs a \"path\"" in r for r in reasons.values())
    assert len(report.prepared) == 1 and report.total_chunks == 1
    _, skipped = read_index(tmp_path / "out")
    assert len(skipped) == 4 and messages  # the index records every skip; progress was reported


def test_a_second_run_resumes_without_redoing_videos(tmp_path: Path, video_dir: Path, tiny_model_dir: Path):
    lines = [{"path": str(video_dir / "c.mp4"), "caption": "a green square moves"}]
    manifest = write_manifest(tmp_path / "m.jsonl", lines)
    kwargs = {"model_path": tiny_model_dir, "height": SIZE, "width": SIZE, "max_sequence_length": SEQUENCE_LENGTH}
    first = prepare_dataset(manifest, tmp_path / "out", **kwargs)
    shard = next((tmp_path / "out" / "shards").glob("*.safetensors"))
    stamp = shard.stat().st_mtime_ns
    write_manifest(manifest, lines + [{"path": str(video_dir / "a.mp4"), "caption": "a red square"}])
    second = prepare_dataset(manifest, tmp_path / "out", **kwargs)
    assert len(first.prepared) == 1 and second.already_done == 1 and len(second.prepared) == 1
    assert shard.stat().st_mtime_ns == stamp
    assert len(read_index(tmp_path / "out")[0]) == 2


def test_manifest_names_cannot_write_outside_the_output_folder(tmp_path: Path, tiny_model_dir: Path):
    (tmp_path / "inner").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    write_video(outside / "v.mp4", moving_square_frames(40, 4), 24)
    manifest = write_manifest(tmp_path / "inner" / "m.jsonl", [
        {"path": "../elsewhere/v.mp4", "caption": "a square"},
        {"path": "../elsewhere/v.mp4", "caption": "a square moves", "id": "../../escaped"},
        {"path": "../elsewhere/v.mp4", "caption": "a square moves left", "id": "named_clip"},
    ])
    out = tmp_path / "inner" / "out"
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(out)}
    report = prepare_dataset(manifest, out, model_path=tiny_model_dir, height=SIZE, width=SIZE,
                             max_sequence_length=SEQUENCE_LENGTH)
    after = {p for p in tmp_path.rglob("*") if not p.is_relative_to(out)}
    assert after == before  # nothing new outside `out`
    assert next(s.reason for s in report.skipped if "escaped" in s.reason).endswith("must be a plain name "
                                                                                   "(letters, digits, '-', '_', '.')")
    assert (out / "shards" / "named_clip.safetensors").is_file() and len(report.prepared) == 2


def test_different_settings_in_one_folder_are_refused(prepared_dir: Path, tmp_path: Path, tiny_model_dir: Path):
    manifest = write_manifest(tmp_path / "m.jsonl", [{"path": "x.mp4", "caption": "x"}])
    with pytest.raises(ConfigError, match="height"):
        prepare_dataset(manifest, prepared_dir, model_path=tiny_model_dir, height=128, width=SIZE,
                        max_sequence_length=SEQUENCE_LENGTH)
    assert not (prepared_dir / "shards" / "x.safetensors").exists()


def test_clips_sharing_one_vae_call_get_their_own_latents(tmp_path: Path, video_dir: Path, tiny_model_dir: Path):
    """A GPU groups clips into one VAE call; each clip's shard must be what it gets when encoded alone (within the
    VAE's batch rounding), and a broken clip in the middle of a group must not shift the others' draws."""
    manifest = write_manifest(tmp_path / "m.jsonl", [
        {"path": str(video_dir / "a.mp4"), "caption": "a red square moves right"},
        {"path": str(tmp_path / "missing.mp4"), "caption": "gone"},
        {"path": str(video_dir / "b.mp4"), "caption": "a blue square moves down"},
        {"path": str(video_dir / "c.mp4"), "caption": "a green square moves"},
    ])
    kwargs = {"model_path": tiny_model_dir, "height": SIZE, "width": SIZE, "max_sequence_length": SEQUENCE_LENGTH,
              "storage_dtype": "float32"}
    alone = prepare_dataset(manifest, tmp_path / "alone", encode_pixel_budget=0, **kwargs)
    grouped = prepare_dataset(manifest, tmp_path / "grouped", encode_pixel_budget=10**9, **kwargs)
    assert alone.prepared == grouped.prepared and len(grouped.prepared) == 3 and len(grouped.skipped) == 1
    alone_index, grouped_index = read_index(tmp_path / "alone")[0], read_index(tmp_path / "grouped")[0]
    for key, record in alone_index.items():
        assert grouped_index[key]["num_chunks"] == record["num_chunks"]
        with safe_open(tmp_path / "alone" / record["shard"], framework="pt") as left, \
                safe_open(tmp_path / "grouped" / grouped_index[key]["shard"], framework="pt") as right:
            for name in ("latents", "first_frame", "text"):
                torch.testing.assert_close(right.get_tensor(name), left.get_tensor(name), rtol=1e-4, atol=1e-5)


def test_encode_many_draws_each_piece_from_its_own_generator(tiny_model_dir: Path):
    codec = LatentCodec(load_model_folder(tiny_model_dir, dtype=torch.float32, load_text_encoder=False).vae)
    pieces = [pixels_from_uint8(moving_square_frames(33, seed)) for seed in (0, 1)]
    pieces[1] = torch.cat([pieces[1], pieces[1].flip(2)])  # pieces may hold several windows
    together = codec.encode_many(pieces, [torch.Generator().manual_seed(s) for s in (5, 6)])
    for piece, seed, result in zip(pieces, (5, 6), together):
        torch.testing.assert_close(result, codec.encode(piece, torch.Generator().manual_seed(seed)),
                                   rtol=1e-4, atol=1e-5)
    swapped = codec.encode_many(pieces, [torch.Generator().manual_seed(s) for s in (6, 5)])
    assert not torch.allclose(swapped[0], together[0], atol=1e-3)  # the draws really come from the generators
