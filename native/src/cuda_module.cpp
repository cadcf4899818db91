// native._native_cuda: the CUDA stitch kernel's module, built only with a CUDA toolkit and
// imported by native.cuda_available() / native.stitch_panorama_cuda() on demand.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "polyvision/stitch_cuda.hpp"
#include "stitch_args.hpp"

namespace py = pybind11;

namespace {

py::array stitch_panorama(py::handle left, py::handle right, py::handle left_map1,
                          py::handle left_map2, py::handle right_map1, py::handle right_map2,
                          py::handle seam, long long band_half, py::handle gains, py::handle out,
                          long long threads) {
  polyvision::StitchCall call;
  polyvision::prepare_stitch(call, "stitch_panorama_cuda", left, right, left_map1, left_map2,
                             right_map1, right_map2, seam, band_half, gains, out, threads);
  {
    py::gil_scoped_release release;
    polyvision::cuda::stitch_panorama(call.job);
  }
  return call.out;
}

}  // namespace

PYBIND11_MODULE(_native_cuda, m) {
  m.doc() = "Polyvision's CUDA stitch kernel (private: use native.stitch_panorama_cuda).";
  m.def("device_count", &polyvision::cuda::device_count,
        "CUDA devices usable now; 0 without a driver or a device.");
  m.def("stitch_panorama", &stitch_panorama, py::arg("left"), py::arg("right"),
        py::arg("left_map1"), py::arg("left_map2"), py::arg("right_map1"), py::arg("right_map2"),
        py::arg("seam"), py::arg("band_half"), py::arg("gains"), py::arg("out") = py::none(),
        py::arg("threads") = 0,
        "stitch_panorama on the current CUDA device (threads is ignored); returns out.");
}
