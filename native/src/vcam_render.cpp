// The virtual camera's renderer on the CPU (semantics and per-pixel arithmetic in
// vcam_render.hpp).
//
// Speed: each output row is two passes over row-sized buffers. The first maps every column to
// its panorama position and bilinear tap (atan2 as a branch-free polynomial, one sqrt and one
// division a pixel; the ray's x per column and the row's d_y, d_z are computed once), written so
// GCC vectorizes it (this file is built with -fno-math-errno and -fno-trapping-math, which allow
// that and change no result), as SSE2 and as an AVX2 clone picked at load time. The second
// gathers the 2x2 footprints and blends a pixel's three channels in one SSE2 register. Rows are
// shared out in blocks of kRowsPerTask to std::threads; every pixel is computed on its own, so
// the output does not depend on the thread count.

#include "vcam_render.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__SSE2__)
#define PV_VCAM_SSE2 1
#include <emmintrin.h>
#else
#define PV_VCAM_SSE2 0
#endif

// An AVX2 clone of the per-pixel mapping beside the baseline one, chosen when the module loads
// (an ifunc: GCC on x86-64 Linux); elsewhere the baseline only.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define PV_VCAM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PV_VCAM_CLONES
#endif

namespace polyvision {

namespace {

constexpr int kRowsPerTask = 8;

// The CPUs this process may run on (its affinity mask on Linux, so a container's cpuset counts).
int default_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
    return CPU_COUNT(&set);
  }
#endif
  return static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
}

// One thread's row buffers.
struct RowTaps {
  std::vector<int> row;
  std::vector<int> column;
  std::vector<float> fx;
  std::vector<float> fy;
  explicit RowTaps(int width)
      : row(static_cast<std::size_t>(width)),
        column(static_cast<std::size_t>(width)),
        fx(static_cast<std::size_t>(width)),
        fy(static_cast<std::size_t>(width)) {}
};

// Pass 1: every column's panorama position and tap, the same float operations as vcam_pixel.
// GCC vectorizes the loop; the AVX2 clone (picked at load time where the CPU has AVX2: twice
// the lanes, the same IEEE operations and so the same bytes) took a third off a 1080p frame.
PV_VCAM_CLONES void map_row(const VcamRow& row, const float* xs, int width,
                            const VcamLimits& lim, int* __restrict tap_row,
                            int* __restrict tap_column, float* __restrict tap_fx,
                            float* __restrict tap_fy) {
  for (int i = 0; i < width; ++i) {
    float u;
    float v;
    vcam_map(row, xs[i], u, v);
    const VcamTap tap = vcam_tap(u, v, lim.u_max, lim.v_max, lim.x0_max, lim.y0_max);
    tap_row[i] = tap.row;
    tap_column[i] = tap.column;
    tap_fx[i] = tap.fx;
    tap_fy[i] = tap.fy;
  }
}

#if PV_VCAM_SSE2
// A pixel's 4 bytes (its BGR and the next pixel's B) as 4 floats.
inline __m128 load_pixel(const std::uint8_t* p) {
  std::int32_t word;
  std::memcpy(&word, p, 4);
  const __m128i zero = _mm_setzero_si128();
  const __m128i bytes = _mm_cvtsi32_si128(word);
  return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(bytes, zero), zero));
}
#endif

// Pass 2: gather each 2x2 footprint and blend it. With SSE2 the three channels go through one
// register: the same float operations as vcam_blend lane by lane, so the same bytes. Its 4-byte
// loads read one byte past the footprint, so footprints at the buffer's very end (and
// one-pixel-wide or -high panoramas) take vcam_blend.
void blend_row(const VcamJob& job, const VcamLimits& lim, const int* tap_row,
               const int* tap_column, const float* tap_fx, const float* tap_fy,
               std::uint8_t* dst) {
  const std::uint8_t* base = job.panorama;
  const std::ptrdiff_t stride = job.pano_stride;
  const int width = job.out_width;
#if PV_VCAM_SSE2
  // Footprints starting before this offset may read 4 bytes at their bottom-right pixel.
  const std::ptrdiff_t fast_end = (job.pano_height - 2) * stride + 3 * (job.pano_width - 2);
  const bool fast = lim.dx != 0 && lim.dy != 0;
  const __m128 half = _mm_set1_ps(0.5F);
  for (int i = 0; i < width; ++i, dst += 3) {
    const std::ptrdiff_t offset = tap_row[i] * stride + tap_column[i];
    if (!fast || offset >= fast_end) {
      vcam_blend(base + offset, lim.dx, lim.dy, tap_fx[i], tap_fy[i], dst);
      continue;
    }
    const std::uint8_t* p = base + offset;
    const __m128 a = load_pixel(p);
    const __m128 b = load_pixel(p + 3);
    const __m128 c = load_pixel(p + stride);
    const __m128 d = load_pixel(p + stride + 3);
    const __m128 fx = _mm_set1_ps(tap_fx[i]);
    const __m128 fy = _mm_set1_ps(tap_fy[i]);
    const __m128 top = _mm_add_ps(a, _mm_mul_ps(fx, _mm_sub_ps(b, a)));
    const __m128 bottom = _mm_add_ps(c, _mm_mul_ps(fx, _mm_sub_ps(d, c)));
    const __m128 value = _mm_add_ps(top, _mm_mul_ps(fy, _mm_sub_ps(bottom, top)));
    __m128i rounded = _mm_cvttps_epi32(_mm_add_ps(value, half));
    rounded = _mm_packs_epi32(rounded, rounded);
    rounded = _mm_packus_epi16(rounded, rounded);
    const std::int32_t bytes = _mm_cvtsi128_si32(rounded);
    std::memcpy(dst, &bytes, 3);
  }
#else
  for (int i = 0; i < width; ++i, dst += 3) {
    vcam_blend(base + tap_row[i] * stride + tap_column[i], lim.dx, lim.dy, tap_fx[i], tap_fy[i],
               dst);
  }
#endif
}

void render_rows(const VcamJob& job, const float* xs, int j0, int j1, RowTaps& taps) {
  const VcamLimits lim = vcam_limits(job);
  for (int j = j0; j < j1; ++j) {
    map_row(vcam_row(job, j), xs, job.out_width, lim, taps.row.data(), taps.column.data(),
            taps.fx.data(), taps.fy.data());
    blend_row(job, lim, taps.row.data(), taps.column.data(), taps.fx.data(), taps.fy.data(),
              job.out + j * job.out_stride);
  }
}

}  // namespace

void vcam_render(const VcamJob& job, int threads) {
  if (job.out_width <= 0 || job.out_height <= 0) {
    return;
  }
  std::vector<float> xs(static_cast<std::size_t>(job.out_width));
  for (int i = 0; i < job.out_width; ++i) {
    xs[static_cast<std::size_t>(i)] = vcam_column(job, i);
  }
  const int tasks = (job.out_height + kRowsPerTask - 1) / kRowsPerTask;
  if (threads <= 0) {
    threads = default_threads();
  }
  threads = std::min(threads, tasks);
  // Every buffer is allocated here, so the workers throw nothing.
  std::vector<RowTaps> buffers;
  buffers.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    buffers.emplace_back(job.out_width);
  }
  std::atomic<int> next{0};
  const auto work = [&job, &next, &xs, tasks](RowTaps& taps) {
    for (int task = next.fetch_add(1); task < tasks; task = next.fetch_add(1)) {
      const int j0 = task * kRowsPerTask;
      render_rows(job, xs.data(), j0, std::min(job.out_height, j0 + kRowsPerTask), taps);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) {
    try {
      pool.emplace_back(work, std::ref(buffers[static_cast<std::size_t>(i)]));
    } catch (const std::system_error&) {
      break;  // out of threads: the ones started (and this one) finish the rows
    }
  }
  work(buffers[0]);
  for (std::thread& thread : pool) {
    thread.join();
  }
}

}  // namespace polyvision
