#pragma once

// The panorama stitch kernel's data and its per-pixel arithmetic, shared by the CPU kernel
// (native/src/stitch.cpp) and its CUDA twin (native/src/stitch.cu) so both give the same bytes.
//
// Per output pixel (x, y), with each camera's fixed-point map (OpenCV's CV_16SC2 layout:
// map1 = integer source (x, y), map2 = (fy << 5) | fx in 1/32 pixel):
//   L = bilinear sample of the left frame (neighbours outside the image count as 0), exactly
//       cv2.remap's INTER_LINEAR result: (sum of v * w + 512) >> 10 with w = (32 - fx)(32 - fy),
//       fx(32 - fy), (32 - fx)fy, fx fy -- OpenCV's 15-bit table divided by its common factor 32;
//   valid_L = 0 <= map x < width and 0 <= map y < height; R and valid_R likewise;
//   w = clamp((seam[y] + band_half - x) / (2 band_half), 0, 1) where both are valid, 1 where only
//       L is, 0 where only R is; black where neither is;
//   out = saturate(round(w gain_L L + (1 - w) gain_R R)) per channel, in 16.16 fixed point.
// With band_half == 0 the seam is hard: columns x < seam[y] take the left camera.

#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define PV_HOST_DEVICE __host__ __device__
#else
#define PV_HOST_DEVICE
#endif

namespace polyvision {

// Fixed-point bits of the gain and blend coefficients.
constexpr int kStitchCoefBits = 16;
// Largest gain accepted: keeps coefficient * 255 * 2 inside int32.
constexpr float kStitchMaxGain = 16.0F;
// Largest band_half accepted (bounds the per-call coefficient table).
constexpr int kStitchMaxBandHalf = 65535;

struct StitchCamera {
  const std::uint8_t* image;  // [height, width, 3] BGR, pixels contiguous within a row
  std::ptrdiff_t row_stride;  // bytes from one row to the next
  int width;
  int height;
  const std::int16_t* map1;   // [H, W, 2] integer source (x, y)
  const std::uint16_t* map2;  // [H, W] (fy << 5) | fx
};

struct StitchJob {
  StitchCamera camera[2];    // left, right
  const std::int32_t* seam;  // [H] seam column of each row
  int band_half;
  // 16.16 coefficients of a camera alone: round(gain[c] * 65536), channel 3 unused (0).
  std::int32_t solo[2][4];
  // Blend coefficients for d = x - (seam - band_half) in [0, 2 band_half]: 8 per d,
  // round(w gain_L[c] 65536) for c < 3, then round((1 - w) gain_R[c] 65536) for c < 3 at 4..6.
  const std::int32_t* blend;
  std::uint8_t* out;  // [H, W, 3]
  std::ptrdiff_t out_stride;
  int width;   // W
  int height;  // H
};

// Fills job.solo and `table` (then points job.blend at it) from the gains [2][3].
void stitch_coefficients(StitchJob& job, const float gains[2][3], std::vector<std::int32_t>& table);

// Runs the CPU kernel over all rows; threads <= 0: all cores. No Python API; safe without the GIL.
void stitch_panorama(const StitchJob& job, int threads);

// The CPU code path stitch_panorama runs: "avx2", "sse4.1" or "scalar".
const char* stitch_code_path();

// The column ranges of row y: [0, left_end) left camera first, [left_end, band_end) blended,
// [band_end, W) right camera first.
struct StitchRow {
  int left_end;
  int band_end;
};

PV_HOST_DEVICE inline StitchRow stitch_row(const StitchJob& job, int y) {
  const long long seam = job.seam[y];
  const long long half = job.band_half;
  long long left_end = half > 0 ? seam - half + 1 : seam;
  long long band_end = seam + half;
  const long long width = job.width;
  left_end = left_end < 0 ? 0 : (left_end > width ? width : left_end);
  band_end = band_end < left_end ? left_end : (band_end > width ? width : band_end);
  return StitchRow{static_cast<int>(left_end), static_cast<int>(band_end)};
}

// Bilinear sample of one camera at output pixel index i; false where the camera does not see it.
PV_HOST_DEVICE inline bool stitch_sample(const StitchCamera& cam, std::size_t i, int v[3]) {
  const int mx = cam.map1[2 * i];
  const int my = cam.map1[2 * i + 1];
  if (mx < 0 || my < 0 || mx >= cam.width || my >= cam.height) {
    return false;
  }
  const unsigned f = cam.map2[i];
  const int fx = static_cast<int>(f & 31U);
  const int fy = static_cast<int>((f >> 5) & 31U);
  const std::uint8_t* top = cam.image + my * cam.row_stride + 3 * mx;
  const bool right = mx + 1 < cam.width;
  const bool down = my + 1 < cam.height;
  for (int c = 0; c < 3; ++c) {
    const int t0 = top[c];
    const int t1 = right ? top[3 + c] : 0;
    const int b0 = down ? top[cam.row_stride + c] : 0;
    const int b1 = right && down ? top[cam.row_stride + 3 + c] : 0;
    const int sum = ((32 - fx) * t0 + fx * t1) * (32 - fy) + ((32 - fx) * b0 + fx * b1) * fy;
    v[c] = (sum + 512) >> 10;
  }
  return true;
}

PV_HOST_DEVICE inline std::uint8_t stitch_saturate(int value) {
  const int v = (value + (1 << (kStitchCoefBits - 1))) >> kStitchCoefBits;
  return static_cast<std::uint8_t>(v > 255 ? 255 : v);
}

// One output pixel, with every check: the reference path (and the CUDA kernel's only path).
PV_HOST_DEVICE inline void stitch_pixel(const StitchJob& job, int x, int y, StitchRow row,
                                        std::uint8_t* dst) {
  const std::size_t i = static_cast<std::size_t>(y) * static_cast<std::size_t>(job.width) +
                        static_cast<std::size_t>(x);
  int first = x < row.band_end ? 0 : 1;  // the camera whose weight is 1 outside the band
  int v[3];
  if (x >= row.left_end && x < row.band_end) {
    int r[3];
    const bool has_l = stitch_sample(job.camera[0], i, v);
    const bool has_r = stitch_sample(job.camera[1], i, r);
    if (has_l && has_r) {
      const long long d =
          static_cast<long long>(x) - (static_cast<long long>(job.seam[y]) - job.band_half);
      const std::int32_t* k = job.blend + 8 * d;
      for (int c = 0; c < 3; ++c) {
        dst[c] = stitch_saturate(k[c] * v[c] + k[4 + c] * r[c]);
      }
      return;
    }
    if (!has_l && !has_r) {
      dst[0] = dst[1] = dst[2] = 0;
      return;
    }
    first = has_l ? 0 : 1;
    if (!has_l) {
      v[0] = r[0];
      v[1] = r[1];
      v[2] = r[2];
    }
  } else if (!stitch_sample(job.camera[first], i, v)) {
    first = 1 - first;
    if (!stitch_sample(job.camera[first], i, v)) {
      dst[0] = dst[1] = dst[2] = 0;
      return;
    }
  }
  const std::int32_t* k = job.solo[first];
  for (int c = 0; c < 3; ++c) {
    dst[c] = stitch_saturate(k[c] * v[c]);
  }
}

}  // namespace polyvision
