// native._native_cuda: the CUDA kernels' module (the stitch kernel and the virtual camera's
// renderer), built only with a CUDA toolkit and imported by native.cuda_available() /
// native.stitch_panorama_cuda() on demand.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "polyvision/stitch_cuda.hpp"
#include "stitch_args.hpp"
#include "vcam_render.hpp"

namespace py = pybind11;

namespace polyvision {
// register_vcam.cpp: the checks and GIL release of vcam_render, around a given renderer.
void def_vcam_render(py::module_& m, const char* name, const char* function,
                     void (*kernel)(const VcamJob&, int), const char* doc);
}  // namespace polyvision

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
  m.doc() = "Polyvision's CUDA kernels (private: use native.stitch_panorama_cuda).";
  m.def("device_count", &polyvision::cuda::device_count,
        "CUDA devices usable now; 0 without a driver or a device.");
  m.def("stitch_panorama", &stitch_panorama, py::arg("left"), py::arg("right"),
        py::arg("left_map1"), py::arg("left_map2"), py::arg("right_map1"), py::arg("right_map2"),
        py::arg("seam"), py::arg("band_half"), py::arg("gains"), py::arg("out") = py::none(),
        py::arg("threads") = 0,
        "stitch_panorama on the current CUDA device (threads is ignored); returns out.");
  polyvision::def_vcam_render(
      m, "vcam_render", "vcam_render_cuda", &polyvision::cuda::vcam_render,
      "vcam_render on the current CUDA device (threads is ignored): the panorama is copied to "
      "the device and the view back inside each call; returns out.");
}
