#pragma once

// Checking stitch_panorama's Python arguments and turning them into a StitchJob without
// copying any buffer; shared by the CPU binding and the CUDA module so both accept the same.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "polyvision/stitch.hpp"

namespace polyvision {

struct StitchCall {
  StitchJob job{};
  std::vector<std::int32_t> table;  // blend coefficients; job.blend points into it
  pybind11::array out;              // the caller's array, or a new one
  int threads = 0;
  // Every array the job points into, kept alive by this frame while the GIL is released.
  std::vector<pybind11::array> keep;
};

// Validates the arguments (std::invalid_argument, i.e. ValueError, naming `function` and the
// offending argument) and fills `call`. Needs the GIL.
void prepare_stitch(StitchCall& call, const char* function, pybind11::handle left,
                    pybind11::handle right, pybind11::handle left_map1, pybind11::handle left_map2,
                    pybind11::handle right_map1, pybind11::handle right_map2, pybind11::handle seam,
                    long long band_half, pybind11::handle gains, pybind11::handle out,
                    long long threads);

}  // namespace polyvision
