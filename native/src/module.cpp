#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_stitch(py::module_& m);
void register_vcam(py::module_& m);

PYBIND11_MODULE(_native, m) {
  m.doc() = "Polyvision native core (private: import polyvision's typed wrappers in native/).";
  register_stitch(m);
  register_vcam(m);
}
