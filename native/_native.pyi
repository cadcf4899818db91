import numpy as np
import numpy.typing as npt

def feather_blend(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], weight: npt.NDArray[np.float32]
) -> npt.NDArray[np.uint8]: ...
