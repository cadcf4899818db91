// vcam_render's Python binding: argument checks and the GIL release, shared by the CPU module
// (register_vcam) and the CUDA module (def_vcam_render with the CUDA renderer).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "vcam_render.hpp"

namespace py = pybind11;

namespace polyvision {

using VcamKernel = void (*)(const VcamJob&, int);

namespace {

// Largest image side accepted: keeps every byte offset of a row (3 * width) and every row index
// within int, the types the row buffers use.
constexpr py::ssize_t kMaxSide = 1 << 28;
constexpr long long kMaxThreads = 4096;

std::string shape_of(const py::array& a) {
  std::string text = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    text += (d ? ", " : "") + std::to_string(a.shape(d));
  }
  return text + (a.ndim() == 1 ? ",)" : ")");
}

// Byte range [first, last) of an array's data.
std::pair<std::uintptr_t, std::uintptr_t> extent(const py::array& a) {
  auto first = reinterpret_cast<std::uintptr_t>(a.data());
  if (a.size() == 0) {
    return {first, first};
  }
  std::uintptr_t last = first + static_cast<std::uintptr_t>(a.itemsize());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const py::ssize_t span = (a.shape(d) - 1) * a.strides(d);
    if (span < 0) {
      first -= static_cast<std::uintptr_t>(-span);
    } else {
      last += static_cast<std::uintptr_t>(span);
    }
  }
  return {first, last};
}

class Checker {
 public:
  explicit Checker(const char* function) : function_(function) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw std::invalid_argument(std::string(function_) + ": " + message);
  }

  // A non-empty [h, w, 3] uint8 image whose pixels are packed (rows may be strided).
  py::array image(py::handle obj, const char* name) const {
    if (!py::isinstance<py::array>(obj)) {
      fail(std::string(name) + " must be a numpy array, got " +
           std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
    }
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<std::uint8_t>>(a)) {
      fail(std::string(name) + " must be uint8, got " + std::string(py::str(a.dtype())));
    }
    if (a.ndim() != 3 || a.shape(2) != 3) {
      fail(std::string(name) + " must have shape (h, w, 3), got " + shape_of(a));
    }
    if (a.shape(0) < 1 || a.shape(1) < 1) {
      fail(std::string(name) + " must not be empty, got shape " + shape_of(a));
    }
    if (a.shape(0) > kMaxSide || a.shape(1) > kMaxSide) {
      fail(std::string(name) + " is larger than 2^28 pixels on a side");
    }
    if (a.strides(2) != 1 || (a.shape(1) > 1 && a.strides(1) != 3) ||
        (a.shape(0) > 1 && a.strides(0) < 3 * a.shape(1))) {
      fail(std::string(name) +
           " must be C-contiguous (pixels packed; only the row stride may be larger)");
    }
    return a;
  }

  void finite(double value, const char* name) const {
    if (!std::isfinite(value)) {
      fail(std::string(name) + " must be finite, got " + std::to_string(value));
    }
  }

  void positive(double value, const char* name) const {
    finite(value, name);
    if (!(value > 0.0)) {
      fail(std::string(name) + " must be positive, got " + std::to_string(value));
    }
  }

 private:
  const char* function_;
};

py::ssize_t row_stride(const py::array& a) {
  return a.shape(0) > 1 ? a.strides(0) : 3 * a.shape(1);
}

}  // namespace

// Defines `name` in `m`: checks the arguments, fills the job and runs `kernel` with the GIL
// released; `function` names the caller in error messages.
void def_vcam_render(py::module_& m, const char* name, const char* function, VcamKernel kernel,
                     const char* doc) {
  m.def(
      name,
      [function, kernel](py::handle panorama_h, py::handle out_h, double cx, double cy,
                         double width, double focal_px, double cv, long long threads) {
        const Checker check(function);
        const py::array panorama = check.image(panorama_h, "panorama");
        py::array out = check.image(out_h, "out");
        if (!out.writeable()) {
          check.fail("out must be writeable");
        }
        const auto target = extent(out);
        const auto source = extent(panorama);
        if (target.first < source.second && source.first < target.second) {
          check.fail("out must not overlap panorama");
        }
        check.finite(cx, "cx");
        check.finite(cy, "cy");
        check.positive(width, "width");
        check.positive(focal_px, "focal_px");
        check.finite(cv, "cv");
        if (threads < 0) {
          check.fail("threads must be >= 0 (0: all cores), got " + std::to_string(threads));
        }

        VcamJob job{};
        job.panorama = static_cast<const std::uint8_t*>(panorama.data());
        job.pano_stride = row_stride(panorama);
        job.pano_width = static_cast<int>(panorama.shape(1));
        job.pano_height = static_cast<int>(panorama.shape(0));
        job.out = static_cast<std::uint8_t*>(out.mutable_data());
        job.out_stride = row_stride(out);
        job.out_width = static_cast<int>(out.shape(1));
        job.out_height = static_cast<int>(out.shape(0));
        vcam_job(job, cx, cy, width, focal_px, cv);
        const int n = static_cast<int>(threads < kMaxThreads ? threads : kMaxThreads);
        {
          // Safe without the GIL: the job points only into `panorama` and `out`, which this
          // frame keeps alive, and the renderer calls no Python API. Releasing it lets other
          // Python threads (decoding, encoding, activity heartbeats) run during a frame.
          py::gil_scoped_release release;
          kernel(job, n);
        }
        return out;
      },
      py::arg("panorama"), py::arg("out"), py::arg("cx"), py::arg("cy"), py::arg("width"),
      py::arg("focal_px"), py::arg("cv"), py::arg("threads") = 1, doc);
}

}  // namespace polyvision

void register_vcam(py::module_& m) {
  polyvision::def_vcam_render(
      m, "vcam_render", "vcam_render", &polyvision::vcam_render,
      "Render the virtual camera's rectilinear view (cx, cy, width) of a cylindrical panorama "
      "(focal_px, cv) into out, bilinear with edges replicated, on `threads` threads (0: all "
      "cores) with the GIL released; returns out.");
}
