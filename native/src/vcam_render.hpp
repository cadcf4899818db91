#pragma once

// The virtual camera's renderer: the rectilinear view of activities/vcam/view.py, sampled
// bilinearly from the cylindrical panorama. The per-pixel arithmetic lives here so the CPU
// renderer (vcam_render.cpp) and its CUDA twin (vcam_render.cu) evaluate the same float code.
//
// Output pixel (i, j) looks along d = (x, y cos e0 - sin e0, y sin e0 + cos e0) with
// x = (i - (out_w - 1) / 2) / fv, y = (j - (out_h - 1) / 2) / fv, and samples the panorama at
//   u = cx + focal * atan2(d_x, d_z),   v = cv + focal * d_y / hypot(d_x, d_z)
// where tan e0 = (cv - cy) / focal, hfov = min(width / focal, 150 degrees) and
// fv = (out_w / 2) / tan(hfov / 2). Bilinear, edges replicated (cv2.BORDER_REPLICATE), pixel
// centres at integer coordinates, rounded to nearest.
//
// Precision: the per-view and per-row terms are computed in double, the per-pixel ones in float
// (atan2 by a Cephes-style polynomial, about 2e-7 rad, i.e. 4e-4 px at focal 2000; positions
// are floats, a 1e-3 px step at 8000 columns), and the bilinear blend in float: within a grey
// level of the exact bilinear sample (the tests check it), for panoramas up to ~16000 columns.

#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define PV_VCAM_HD __host__ __device__
#else
#define PV_VCAM_HD
#endif

namespace polyvision {

// activities.vcam.view.MAX_HFOV_RAD: wider windows are narrowed to this field of view.
constexpr double kVcamMaxHfovRad = 150.0 * 3.14159265358979323846 / 180.0;

struct VcamJob {
  const std::uint8_t* panorama;  // [height, width, 3], pixels packed within a row
  std::ptrdiff_t pano_stride;    // bytes from one panorama row to the next
  int pano_width;
  int pano_height;
  std::uint8_t* out;  // [out_height, out_width, 3], pixels packed within a row
  std::ptrdiff_t out_stride;
  int out_width;
  int out_height;
  // The view, in the units of activities/vcam/view.py (see vcam_job).
  double cx;
  double cv;
  double focal;
  double inv_fv;  // 1 / fv
  double cos_e;
  double sin_e;
};

// Fills the view terms of `job` (its buffers and sizes already set) from a path row and the
// panorama's geometry. The caller has checked that every number is finite and width, focal > 0.
inline void vcam_job(VcamJob& job, double cx, double cy, double width, double focal, double cv) {
  const double hfov = std::fmin(width / focal, kVcamMaxHfovRad);
  const double fv = (job.out_width / 2.0) / std::tan(hfov / 2.0);
  const double e0 = std::atan((cv - cy) / focal);
  job.cx = cx;
  job.cv = cv;
  job.focal = focal;
  job.inv_fv = 1.0 / fv;
  job.cos_e = std::cos(e0);
  job.sin_e = std::sin(e0);
}

// The ray's x of output column i (the same for every row).
PV_VCAM_HD inline float vcam_column(const VcamJob& job, int i) {
  return static_cast<float>((i - (job.out_width - 1) / 2.0) * job.inv_fv);
}

// The terms of output row j: the ray's (d_y, d_z) and focal * d_y.
struct VcamRow {
  float dz;
  float dz2;     // dz * dz
  float fdy;     // focal * d_y
  float cx;      // the view's centre column
  float cv;      // the horizon row
  float focal;
};

PV_VCAM_HD inline VcamRow vcam_row(const VcamJob& job, int j) {
  const double y = (j - (job.out_height - 1) / 2.0) * job.inv_fv;
  const double dy = y * job.cos_e - job.sin_e;
  const double dz = y * job.sin_e + job.cos_e;
  return VcamRow{static_cast<float>(dz),          static_cast<float>(dz * dz),
                 static_cast<float>(job.focal * dy), static_cast<float>(job.cx),
                 static_cast<float>(job.cv),       static_cast<float>(job.focal)};
}

// atan2(y, x) in float without branches (selects only, so loops over it vectorize): the octant
// reduced to a ratio in [0, 1], then to [0, tan(pi / 8)] and Cephes' atanf polynomial.
PV_VCAM_HD inline float vcam_atan2(float y, float x) {
  const float ay = y < 0.0F ? -y : y;
  const float ax = x < 0.0F ? -x : x;
  const bool steep = ay > ax;
  const float hi = steep ? ay : ax;
  const float lo = steep ? ax : ay;
  // Both divisions always run (and cannot divide by zero), so the loop has no branches.
  const float a = lo / (hi > 0.0F ? hi : 1.0F);
  const float reduced = (a - 1.0F) / (a + 1.0F);
  const bool upper = a > 0.414213562F;  // tan(pi / 8)
  const float t = upper ? reduced : a;
  const float z = t * t;
  float r = (((8.05374449538e-2F * z - 1.38776856032e-1F) * z + 1.99777106478e-1F) * z -
             3.33329491539e-1F) *
                z * t +
            t;
  r = upper ? r + 0.785398163F : r;
  r = steep ? 1.57079633F - r : r;
  r = x < 0.0F ? 3.14159265F - r : r;
  return y < 0.0F ? -r : r;
}

// Panorama position (u, v) of the ray through column x of a row.
PV_VCAM_HD inline void vcam_map(const VcamRow& row, float x, float& u, float& v) {
  u = row.cx + row.focal * vcam_atan2(x, row.dz);
  v = row.cv + row.fdy / sqrtf(x * x + row.dz2);
}

// Where a sample reads: the top-left neighbour's row and byte column, and the weights of the
// right and lower neighbours. Coordinates are clamped into the image first, which is what
// replicating the edges does to a bilinear sample (NaN goes to 0).
struct VcamTap {
  int row;     // y0
  int column;  // 3 * x0
  float fx;
  float fy;
};

PV_VCAM_HD inline VcamTap vcam_tap(float u, float v, float u_max, float v_max, int x0_max,
                                   int y0_max) {
  u = u > 0.0F ? u : 0.0F;
  u = u < u_max ? u : u_max;
  v = v > 0.0F ? v : 0.0F;
  v = v < v_max ? v : v_max;
  int x0 = static_cast<int>(u);
  int y0 = static_cast<int>(v);
  x0 = x0 < x0_max ? x0 : x0_max;
  y0 = y0 < y0_max ? y0 : y0_max;
  return VcamTap{y0, 3 * x0, u - static_cast<float>(x0), v - static_cast<float>(y0)};
}

// The bilinear blend of the 2x2 footprint at `p` (right neighbour dx bytes on, lower one dy).
PV_VCAM_HD inline void vcam_blend(const std::uint8_t* p, std::ptrdiff_t dx, std::ptrdiff_t dy,
                                  float fx, float fy, std::uint8_t* dst) {
  const std::uint8_t* q = p + dy;
  for (int c = 0; c < 3; ++c) {
    const float top = p[c] + fx * static_cast<float>(p[c + dx] - p[c]);
    const float bottom = q[c] + fx * static_cast<float>(q[c + dx] - q[c]);
    const float value = top + fy * (bottom - top);
    // value is within [0, 255] up to float rounding; truncating value + 0.5 rounds it.
    dst[c] = static_cast<std::uint8_t>(value + 0.5F);
  }
}

// The sampling limits of a job's panorama.
struct VcamLimits {
  float u_max;  // width - 1
  float v_max;  // height - 1
  int x0_max;   // max(width - 2, 0)
  int y0_max;
  std::ptrdiff_t dx;  // bytes to the right neighbour (0 in a one-column panorama)
  std::ptrdiff_t dy;  // bytes to the lower neighbour (0 in a one-row panorama)
};

PV_VCAM_HD inline VcamLimits vcam_limits(const VcamJob& job) {
  return VcamLimits{static_cast<float>(job.pano_width - 1),
                    static_cast<float>(job.pano_height - 1),
                    job.pano_width > 1 ? job.pano_width - 2 : 0,
                    job.pano_height > 1 ? job.pano_height - 2 : 0,
                    job.pano_width > 1 ? 3 : 0,
                    job.pano_height > 1 ? job.pano_stride : 0};
}

// One output pixel from start to end: the reference path (and the CUDA kernel's only one).
PV_VCAM_HD inline void vcam_pixel(const VcamJob& job, const VcamLimits& lim, const VcamRow& row,
                                  int i, std::uint8_t* dst) {
  float u;
  float v;
  vcam_map(row, vcam_column(job, i), u, v);
  const VcamTap tap = vcam_tap(u, v, lim.u_max, lim.v_max, lim.x0_max, lim.y0_max);
  vcam_blend(job.panorama + tap.row * job.pano_stride + tap.column, lim.dx, lim.dy, tap.fx, tap.fy,
             dst);
}

// Renders the view on the CPU over row blocks on `threads` threads (<= 0: all cores); the
// output does not depend on the thread count. No Python API; safe without the GIL.
void vcam_render(const VcamJob& job, int threads);

namespace cuda {
// The same on the current CUDA device (threads is ignored): copies the panorama over, runs one
// thread per output pixel (vcam_pixel) and copies the view back into job.out. Throws
// std::runtime_error on a CUDA error. No Python API; safe without the GIL. Built only with CUDA.
void vcam_render(const VcamJob& job, int threads);
}  // namespace cuda

}  // namespace polyvision
