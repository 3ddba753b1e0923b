"""Video and image input/output for Helios: a crash-safe streaming MP4 writer, readers, resampling, JSON sidecars.

All encoding and decoding goes through the ffmpeg binary bundled with imageio-ffmpeg (no system ffmpeg needed).
"""

from helios_core.video.frame_transforms import nearest_frame_indices, resample_fps, resize_center_crop
from helios_core.video.mp4_metadata import MP4_METADATA_KEYS, read_video_metadata
from helios_core.video.output_path import check_output_path, partial_path_for
from helios_core.video.reader import VideoClip, VideoInfo, iter_video_frames, probe_video, read_image, read_video
from helios_core.video.sidecar import read_sidecar, sidecar_path, write_sidecar
from helios_core.video.writer import StreamingVideoWriter, write_video

__all__ = [
    "MP4_METADATA_KEYS",
    "StreamingVideoWriter",
    "VideoClip",
    "VideoInfo",
    "check_output_path",
    "iter_video_frames",
    "nearest_frame_indices",
    "partial_path_for",
    "probe_video",
    "read_image",
    "read_sidecar",
    "read_video",
    "read_video_metadata",
    "resample_fps",
    "resize_center_crop",
    "sidecar_path",
    "write_sidecar",
    "write_video",
]
