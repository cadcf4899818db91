import numpy as np
import numpy.typing as npt

def feather_blend(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], weight: npt.NDArray[np.float32]
) -> npt.NDArray[np.uint8]: ...
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
def stitch_code_path() -> str: ...
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
