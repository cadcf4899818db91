import numpy as np
import numpy.typing as npt

def device_count() -> int: ...
def stitch_panorama(
    left: npt.NDArray[np.uint8],
    right: npt.NDArray[np.uint8],
    left_map1: npt.NDArray[np.int16],
    left_map2: npt.NDArray[np.uint16],
    right_map1: npt.NDArray[np.int16],
    right_map2: npt.NDArray[np.uint16],
    seam: npt.NDArray[np.int32],
    band_half: int,
    gains: npt.NDArray[np.float32],
    out: npt.NDArray[np.uint8] | None = None,
    threads: int = 0,
) -> npt.NDArray[np.uint8]: ...
def vcam_render(
    panorama: npt.NDArray[np.uint8],
    out: npt.NDArray[np.uint8],
    cx: float,
    cy: float,
    width: float,
    focal_px: float,
    cv: float,
    threads: int = 1,
) -> npt.NDArray[np.uint8]: ...
