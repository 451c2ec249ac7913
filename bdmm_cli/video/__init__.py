"""Video input and output: streaming decode, H.264 encode with audio, atomic writes.

Everything goes through imageio-ffmpeg's bundled ffmpeg, so no system ffmpeg (and no
ffprobe) is needed. Frames are ``(H, W, 3)`` uint8 RGB numpy arrays.
"""

from bdmm_cli.video.image import read_image
from bdmm_cli.video.read import VideoInfo, count_frames, iter_frames, probe_video
from bdmm_cli.video.write import VideoWriter

__all__ = ["VideoInfo", "VideoWriter", "count_frames", "iter_frames", "probe_video", "read_image"]
