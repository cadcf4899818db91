#pragma once

// The CUDA twin of the stitch kernel (native/src/stitch.cu), built only with a CUDA toolkit.

#include "polyvision/stitch.hpp"

namespace polyvision::cuda {

// CUDA devices usable now; 0 without a driver or a device (never throws).
int device_count();

// Copies the job's frames, maps, seam and coefficients to the current device, runs one thread
// per output pixel (stitch_pixel, the CPU kernel's reference arithmetic) and copies the panorama
// into job.out. Throws std::runtime_error on a CUDA error. No Python API; safe without the GIL.
void stitch_panorama(const StitchJob& job);

}  // namespace polyvision::cuda
