#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "polyvision/blend.hpp"
#include "polyvision/stitch.hpp"
#include "stitch_args.hpp"

namespace py = pybind11;

namespace {

using U8 = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>;
using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;

U8 feather_blend(const U8& a, const U8& b, const F32& weight) {
  if (a.ndim() != 3 || b.ndim() != 3) {
    throw std::invalid_argument("feather_blend: images must be HxWxC arrays");
  }
  for (py::ssize_t d = 0; d < 3; ++d) {
    if (a.shape(d) != b.shape(d)) {
      throw std::invalid_argument("feather_blend: images differ in shape");
    }
  }
  if (weight.ndim() != 2 || weight.shape(0) != a.shape(0) || weight.shape(1) != a.shape(1)) {
    throw std::invalid_argument("feather_blend: weight must be HxW matching the images");
  }
  U8 out({a.shape(0), a.shape(1), a.shape(2)});
  const auto pixels = static_cast<std::size_t>(a.shape(0) * a.shape(1));
  const auto channels = static_cast<std::size_t>(a.shape(2));
  const std::uint8_t* pa = a.data();
  const std::uint8_t* pb = b.data();
  const float* pw = weight.data();
  std::uint8_t* po = out.mutable_data();
  {
    // Safe without the GIL: the loop touches only these buffers, which the arrays
    // held by this frame keep alive, and calls no Python API. Releasing it lets
    // activity heartbeats flow while a 4K panorama blends.
    py::gil_scoped_release release;
    polyvision::feather_blend(pa, pb, pw, po, pixels, channels);
  }
  return out;
}

py::array stitch_panorama(py::handle left, py::handle right, py::handle left_map1,
                          py::handle left_map2, py::handle right_map1, py::handle right_map2,
                          py::handle seam, long long band_half, py::handle gains, py::handle out,
                          long long threads) {
  polyvision::StitchCall call;
  polyvision::prepare_stitch(call, "stitch_panorama", left, right, left_map1, left_map2, right_map1,
                             right_map2, seam, band_half, gains, out, threads);
  {
    // The job points only into arrays that `call` holds; the kernel calls no Python API.
    py::gil_scoped_release release;
    polyvision::stitch_panorama(call.job, call.threads);
  }
  return call.out;
}

}  // namespace

void register_stitch(py::module_& m) {
  m.def("feather_blend", &feather_blend, py::arg("a"), py::arg("b"), py::arg("weight"),
        "Blend two HxWxC uint8 images with a per-pixel HxW float32 weight for the first.");
  m.def("stitch_panorama", &stitch_panorama, py::arg("left"), py::arg("right"),
        py::arg("left_map1"), py::arg("left_map2"), py::arg("right_map1"), py::arg("right_map2"),
        py::arg("seam"), py::arg("band_half"), py::arg("gains"), py::arg("out") = py::none(),
        py::arg("threads") = 0,
        "Warp, gain-compensate and feather two BGR frames into the panorama in one pass "
        "(fixed-point cv2.convertMaps maps, GIL released); returns out.");
  m.def("stitch_code_path", &polyvision::stitch_code_path,
        "The CPU code path stitch_panorama runs: 'avx2', 'sse4.1' or 'scalar'.");
}
