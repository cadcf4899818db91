#include "stitch_args.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace py = pybind11;

namespace polyvision {

namespace {

class Checker {
 public:
  explicit Checker(const char* function) : function_(function) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw std::invalid_argument(std::string(function_) + ": " + message);
  }

  py::array array(py::handle obj, const char* name) const {
    if (!py::isinstance<py::array>(obj)) {
      fail(std::string(name) + " must be a numpy array, got " +
           std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
    }
    return py::reinterpret_borrow<py::array>(obj);
  }

  template <class T>
  void dtype(const py::array& a, const char* name, const char* expected) const {
    if (!py::isinstance<py::array_t<T>>(a)) {
      fail(std::string(name) + " must be " + expected + ", got " + std::string(py::str(a.dtype())));
    }
  }

  static std::string shape_of(const py::array& a) {
    std::string text = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
      text += (d ? ", " : "") + std::to_string(a.shape(d));
    }
    return text + (a.ndim() == 1 ? ",)" : ")");
  }

  void c_contiguous(const py::array& a, const char* name) const {
    if (!(a.flags() & py::array::c_style)) {
      fail(std::string(name) + " must be C-contiguous");
    }
  }

  // An [h, w, 3] uint8 image whose rows may be strided but whose pixels are packed.
  void image(const py::array& a, const char* name) const {
    dtype<std::uint8_t>(a, name, "uint8");
    if (a.ndim() != 3 || a.shape(2) != 3) {
      fail(std::string(name) + " must have shape (h, w, 3), got " + shape_of(a));
    }
    if (a.strides(2) != 1 || (a.shape(1) > 1 && a.strides(1) != 3) ||
        (a.shape(0) > 1 && a.strides(0) < 3 * a.shape(1))) {
      fail(std::string(name) +
           " must have its pixels packed (C-contiguous rows; only the row stride may differ)");
    }
  }

 private:
  const char* function_;
};

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

StitchCamera camera(const py::array& image, const py::array& map1, const py::array& map2) {
  return StitchCamera{static_cast<const std::uint8_t*>(image.data()),
                      image.shape(0) > 1 ? image.strides(0) : 3 * image.shape(1),
                      static_cast<int>(image.shape(1)),
                      static_cast<int>(image.shape(0)),
                      static_cast<const std::int16_t*>(map1.data()),
                      static_cast<const std::uint16_t*>(map2.data())};
}

}  // namespace

void prepare_stitch(StitchCall& call, const char* function, py::handle left_h, py::handle right_h,
                    py::handle left_map1_h, py::handle left_map2_h, py::handle right_map1_h,
                    py::handle right_map2_h, py::handle seam_h, long long band_half,
                    py::handle gains_h, py::handle out_h, long long threads) {
  const Checker check(function);
  const py::array left = check.array(left_h, "left");
  const py::array right = check.array(right_h, "right");
  check.image(left, "left");
  check.image(right, "right");
  for (const py::array* image : {&left, &right}) {
    if (image->shape(0) > (1 << 30) || image->shape(1) > (1 << 28)) {
      check.fail("frames larger than 2^28 columns or 2^30 rows are not supported");
    }
  }

  const py::array map1[2] = {check.array(left_map1_h, "left_map1"),
                             check.array(right_map1_h, "right_map1")};
  const py::array map2[2] = {check.array(left_map2_h, "left_map2"),
                             check.array(right_map2_h, "right_map2")};
  const char* map1_names[2] = {"left_map1", "right_map1"};
  const char* map2_names[2] = {"left_map2", "right_map2"};
  for (int cam = 0; cam < 2; ++cam) {
    check.dtype<std::int16_t>(map1[cam], map1_names[cam], "int16");
    check.dtype<std::uint16_t>(map2[cam], map2_names[cam], "uint16");
  }
  if (map1[0].ndim() != 3 || map1[0].shape(2) != 2) {
    check.fail("left_map1 must have shape (H, W, 2), got " + Checker::shape_of(map1[0]));
  }
  const py::ssize_t height = map1[0].shape(0);
  const py::ssize_t width = map1[0].shape(1);
  if (height > (1 << 30) || width > (1 << 28)) {
    check.fail("panoramas larger than 2^28 columns or 2^30 rows are not supported");
  }
  const std::string hw = "(" + std::to_string(height) + ", " + std::to_string(width);
  for (int cam = 0; cam < 2; ++cam) {
    if (map1[cam].ndim() != 3 || map1[cam].shape(0) != height || map1[cam].shape(1) != width ||
        map1[cam].shape(2) != 2) {
      check.fail(std::string(map1_names[cam]) + " must have shape " + hw +
                 ", 2) like left_map1, got " + Checker::shape_of(map1[cam]));
    }
    if (map2[cam].ndim() != 2 || map2[cam].shape(0) != height || map2[cam].shape(1) != width) {
      check.fail(std::string(map2_names[cam]) + " must have shape " + hw +
                 ") like left_map1, got " + Checker::shape_of(map2[cam]));
    }
    check.c_contiguous(map1[cam], map1_names[cam]);
    check.c_contiguous(map2[cam], map2_names[cam]);
  }

  const py::array seam = check.array(seam_h, "seam");
  check.dtype<std::int32_t>(seam, "seam", "int32");
  if (seam.ndim() != 1 || seam.shape(0) != height) {
    check.fail("seam must have shape (" + std::to_string(height) + ",) (one column per row), got " +
               Checker::shape_of(seam));
  }
  check.c_contiguous(seam, "seam");

  if (band_half < 0 || band_half > kStitchMaxBandHalf) {
    check.fail("band_half must be in [0, " + std::to_string(kStitchMaxBandHalf) + "], got " +
               std::to_string(band_half));
  }
  if (threads < 0) {
    check.fail("threads must be >= 0 (0: all cores), got " + std::to_string(threads));
  }

  const py::array gains_a = check.array(gains_h, "gains");
  check.dtype<float>(gains_a, "gains", "float32");
  if (gains_a.ndim() != 2 || gains_a.shape(0) != 2 || gains_a.shape(1) != 3) {
    check.fail("gains must have shape (2, 3) (left and right camera, BGR), got " +
               Checker::shape_of(gains_a));
  }
  float gains[2][3];
  const auto g = py::reinterpret_borrow<py::array_t<float>>(gains_a).unchecked<2>();
  for (int cam = 0; cam < 2; ++cam) {
    for (int c = 0; c < 3; ++c) {
      gains[cam][c] = g(cam, c);
      if (!(gains[cam][c] >= 0.0F && gains[cam][c] <= kStitchMaxGain)) {
        check.fail("gains must be finite and in [0, 16], got " + std::to_string(gains[cam][c]));
      }
    }
  }

  if (out_h.is_none()) {
    call.out = py::array_t<std::uint8_t>({height, width, static_cast<py::ssize_t>(3)});
  } else {
    call.out = check.array(out_h, "out");
    check.dtype<std::uint8_t>(call.out, "out", "uint8");
    if (call.out.ndim() != 3 || call.out.shape(0) != height || call.out.shape(1) != width ||
        call.out.shape(2) != 3) {
      check.fail("out must have shape " + hw + ", 3) (the maps' size), got " +
                 Checker::shape_of(call.out));
    }
    check.image(call.out, "out");
    if (!call.out.writeable()) {
      check.fail("out must be writeable");
    }
    const auto target = extent(call.out);
    for (const py::array* input :
         {&left, &right, &map1[0], &map2[0], &map1[1], &map2[1], &seam, &gains_a}) {
      const auto source = extent(*input);
      if (target.first < source.second && source.first < target.second) {
        check.fail("out must not overlap an input");
      }
    }
  }

  StitchJob& job = call.job;
  job.camera[0] = camera(left, map1[0], map2[0]);
  job.camera[1] = camera(right, map1[1], map2[1]);
  job.seam = static_cast<const std::int32_t*>(seam.data());
  job.band_half = static_cast<int>(band_half);
  job.out = static_cast<std::uint8_t*>(call.out.mutable_data());
  job.out_stride = height > 1 ? call.out.strides(0) : 3 * width;
  job.width = static_cast<int>(width);
  job.height = static_cast<int>(height);
  stitch_coefficients(job, gains, call.table);
  call.threads = static_cast<int>(std::min<long long>(threads, 4096));
  call.keep = {left, right, map1[0], map2[0], map1[1], map2[1], seam};
}

}  // namespace polyvision
