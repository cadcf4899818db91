// The panorama stitch kernel on the CPU: one pass over the output rows reads both cameras'
// maps and frames and writes the gain-compensated, feathered panorama (semantics and the
// per-pixel reference arithmetic in polyvision/stitch.hpp).
//
// Speed: every row splits into a left-camera run, the blend band and a right-camera run, so
// outside the band only one camera's map is read (the other only where the first does not see
// the pixel). Runs go 8 pixels at a time through SIMD code when all 8 samples have their 2x2
// footprint inside the frame: two 8-byte loads fetch a pixel's 2x2 BGR footprint, one shuffle
// pairs the bytes, pmaddubsw applies the 5-bit horizontal weights and pmaddwd the vertical
// ones -- the same integer sum as cv2.remap -- then a 16.16 multiply applies gain and blend
// weight. Other groups (frame borders, cameras that do not see the pixel) take the scalar
// reference path. The SIMD code comes as SSE4.1 and AVX2 (two pixels per register) functions
// made with target attributes and picked at run time (__builtin_cpu_supports), so the module
// runs on any x86-64 -- no -march=native -- and builds elsewhere, scalar only. Source lines a few
// rows ahead are prefetched from the maps (see kPrefetchRows). Rows are shared out in blocks of
// kRowsPerTask to std::threads; every pixel is computed on its own, so the output does not
// depend on the thread count.

#include "polyvision/stitch.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define PV_X86_SIMD 1
#include <immintrin.h>
#else
#define PV_X86_SIMD 0
#endif

namespace polyvision {

void stitch_coefficients(StitchJob& job, const float gains[2][3],
                         std::vector<std::int32_t>& table) {
  const double scale = static_cast<double>(1 << kStitchCoefBits);
  for (int cam = 0; cam < 2; ++cam) {
    for (int c = 0; c < 3; ++c) {
      job.solo[cam][c] = static_cast<std::int32_t>(std::llround(gains[cam][c] * scale));
    }
    job.solo[cam][3] = 0;
  }
  const int span = 2 * job.band_half;
  table.assign(8 * static_cast<std::size_t>(span + 1), 0);
  for (int d = 0; d <= span; ++d) {
    const double w = span > 0 ? static_cast<double>(span - d) / span : 1.0;
    for (int c = 0; c < 3; ++c) {
      table[8 * d + c] = static_cast<std::int32_t>(std::llround(w * gains[0][c] * scale));
      table[8 * d + 4 + c] =
          static_cast<std::int32_t>(std::llround((1.0 - w) * gains[1][c] * scale));
    }
  }
  job.blend = table.data();
}

namespace {

constexpr int kGroup = 8;        // pixels per SIMD step
constexpr int kRowsPerTask = 8;  // rows a thread takes at a time
// The SIMD runs prefetch the source lines that row y + kPrefetchRows will read at the same
// columns. The maps walk the frames diagonally (the cameras are rotated, the panorama curved), a
// pattern the hardware prefetchers do not follow; without this a 5700x1669 panorama from two
// 3856x2180 frames ran 2.6x slower on one core, waiting on memory.
constexpr int kPrefetchRows = 4;

// Row y from x0 to x1 through the reference path.
void scalar_run(const StitchJob& job, int y, StitchRow row, int x0, int x1) {
  std::uint8_t* dst = job.out + y * job.out_stride + 3 * static_cast<std::ptrdiff_t>(x0);
  for (int x = x0; x < x1; ++x, dst += 3) {
    stitch_pixel(job, x, y, row, dst);
  }
}

void scalar_rows(const StitchJob& job, int y0, int y1) {
  for (int y = y0; y < y1; ++y) {
    scalar_run(job, y, stitch_row(job, y), 0, job.width);
  }
}

#if PV_X86_SIMD

#define PV_INLINE inline __attribute__((always_inline))
#define PV_SSE41 __attribute__((target("sse4.1")))
#define PV_AVX2 __attribute__((target("avx2")))

// pmaddubsw weights of fx: bytes (32 - fx, fx) repeated; pmaddwd weights of fy: int16 (32 - fy,
// fy).
struct alignas(32) WeightTables {
  std::int8_t wx[32][16];
  std::int16_t wy[32][8];
  WeightTables() {
    for (int f = 0; f < 32; ++f) {
      for (int k = 0; k < 8; ++k) {
        wx[f][2 * k] = static_cast<std::int8_t>(32 - f);
        wx[f][2 * k + 1] = static_cast<std::int8_t>(f);
      }
      for (int k = 0; k < 4; ++k) {
        wy[f][2 * k] = static_cast<std::int16_t>(32 - f);
        wy[f][2 * k + 1] = static_cast<std::int16_t>(f);
      }
    }
  }
};

const WeightTables& weight_tables() {
  static const WeightTables tables;
  return tables;
}

// Where the 2x2 footprint of a map entry can be read with two 8-byte loads: 0 <= x <= w - 3
// (the load reads 2 bytes past the right neighbour) and 0 <= y <= h - 2.
struct FastLimits {
  std::int16_t x_max;
  std::int16_t y_max;
};

FastLimits fast_limits(const StitchCamera& cam) {
  const auto clamp16 = [](int v) { return static_cast<std::int16_t>(std::clamp(v, -1, 32767)); };
  return FastLimits{clamp16(cam.width - 3), clamp16(cam.height - 2)};
}

// The limits as one 32-bit lane matching a map1 entry: x in the low half, y in the high half.
int fast_limits_lane(const StitchCamera& cam) {
  const FastLimits lim = fast_limits(cam);
  return static_cast<int>(
      static_cast<std::uint16_t>(lim.x_max) |
      (static_cast<std::uint32_t>(static_cast<std::uint16_t>(lim.y_max)) << 16));
}

struct RowMaps {
  const std::uint8_t* image;
  std::ptrdiff_t stride;
  const std::int16_t* map1;  // at the row's first pixel
  const std::uint16_t* map2;
};

RowMaps row_maps(const StitchCamera& cam, int y, int width) {
  const std::size_t base = static_cast<std::size_t>(y) * static_cast<std::size_t>(width);
  return RowMaps{cam.image, cam.row_stride, cam.map1 + 2 * base, cam.map2 + base};
}

// Byte offset in the frame of the top-left pixel of map entry x (negative or past the frame for
// entries the camera does not see).
PV_INLINE std::ptrdiff_t source_offset(const RowMaps& m, int x) {
  std::uint32_t xy;
  std::memcpy(&xy, m.map1 + 2 * x, sizeof(xy));
  const int sx = static_cast<std::int16_t>(xy & 0xFFFFU);
  const int sy = static_cast<std::int32_t>(xy) >> 16;
  return sy * m.stride + 3 * sx;
}

// ------------------------------------------------------------------ SSE4.1 (128-bit) path

// Prefetches the source lines of the group at x in row y + kPrefetchRows (ahead.map1 is null
// past the last row): entries x and x + 4, both rows of each footprint. Map entries of pixels
// the camera does not see give wild addresses, which a prefetch ignores.
PV_INLINE void prefetch_ahead(const RowMaps& ahead, int x, int width) {
  if (ahead.map1 == nullptr) {
    return;
  }
  const auto base = reinterpret_cast<std::uintptr_t>(ahead.image);
  for (const int k : {x, std::min(x + 4, width - 1)}) {
    const std::uintptr_t p = base + static_cast<std::uintptr_t>(source_offset(ahead, k));
    __builtin_prefetch(reinterpret_cast<const void*>(p));
    __builtin_prefetch(
        reinterpret_cast<const void*>(p + static_cast<std::uintptr_t>(ahead.stride)));
  }
}

RowMaps rows_ahead(const StitchJob& job, int cam, int y) {
  if (y + kPrefetchRows >= job.height) {
    return RowMaps{nullptr, 0, nullptr, nullptr};
  }
  return row_maps(job.camera[cam], y + kPrefetchRows, job.width);
}

// True when all 8 entries from x can take the SIMD path.
PV_SSE41 PV_INLINE bool fast8_sse(const RowMaps& m, int x, __m128i limit) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(m.map1 + 2 * x));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(m.map1 + 2 * x + 8));
  const __m128i zero = _mm_setzero_si128();
  const __m128i bad =
      _mm_or_si128(_mm_or_si128(_mm_cmpgt_epi16(zero, a), _mm_cmpgt_epi16(a, limit)),
                   _mm_or_si128(_mm_cmpgt_epi16(zero, b), _mm_cmpgt_epi16(b, limit)));
  return _mm_testz_si128(bad, bad) != 0;
}

// int32 [b, g, r, 0]: cv2.remap's bilinear sum (before the rounding shift) of entry x.
PV_SSE41 PV_INLINE __m128i bilinear_sse(const RowMaps& m, int x, const WeightTables& t,
                                        __m128i pairs) {
  const std::uint8_t* p = m.image + source_offset(m, x);
  __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  v = _mm_castpd_si128(
      _mm_loadh_pd(_mm_castsi128_pd(v), reinterpret_cast<const double*>(p + m.stride)));
  v = _mm_shuffle_epi8(v, pairs);
  const unsigned f = m.map2[x];
  v = _mm_maddubs_epi16(v, _mm_load_si128(reinterpret_cast<const __m128i*>(t.wx[f & 31U])));
  return _mm_madd_epi16(v, _mm_load_si128(reinterpret_cast<const __m128i*>(t.wy[(f >> 5) & 31U])));
}

// (sum + 512) >> 10: the 8-bit sample as cv2.remap rounds it.
PV_SSE41 PV_INLINE __m128i round_sample_sse(__m128i sum) {
  return _mm_srai_epi32(_mm_add_epi32(sum, _mm_set1_epi32(512)), 10);
}

PV_SSE41 PV_INLINE __m128i shift_coef_sse(__m128i value) {
  return _mm_srai_epi32(_mm_add_epi32(value, _mm_set1_epi32(1 << (kStitchCoefBits - 1))),
                        kStitchCoefBits);
}

// Bytes (T0, T3, B0, B3, T1, T4, B1, B4, T2, T5, B2, B5): top/bottom-left with top/bottom-right.
PV_SSE41 PV_INLINE __m128i pair_shuffle_sse() {
  return _mm_setr_epi8(0, 3, 8, 11, 1, 4, 9, 12, 2, 5, 10, 13, -1, -1, -1, -1);
}

// Packs 8 int32 [b, g, r, x] pixels (already in 0..255 after saturation) to 24 bytes at dst.
PV_SSE41 PV_INLINE void store8_sse(std::uint8_t* dst, const __m128i o[8]) {
  const __m128i compact = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  const __m128i lo = _mm_shuffle_epi8(
      _mm_packus_epi16(_mm_packus_epi32(o[0], o[1]), _mm_packus_epi32(o[2], o[3])), compact);
  const __m128i hi = _mm_shuffle_epi8(
      _mm_packus_epi16(_mm_packus_epi32(o[4], o[5]), _mm_packus_epi32(o[6], o[7])), compact);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_or_si128(lo, _mm_slli_si128(hi, 12)));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + 16), _mm_srli_si128(hi, 4));
}

// One camera alone over [x0, x1) of row y (cam first; the other where cam does not see).
PV_SSE41 PV_INLINE void solo_run_sse(const StitchJob& job, int y, StitchRow row, int cam, int x0,
                                     int x1) {
  const WeightTables& t = weight_tables();
  const RowMaps m = row_maps(job.camera[cam], y, job.width);
  const RowMaps ahead = rows_ahead(job, cam, y);
  const __m128i limit = _mm_set1_epi32(fast_limits_lane(job.camera[cam]));
  const __m128i pairs = pair_shuffle_sse();
  const __m128i gain = _mm_loadu_si128(reinterpret_cast<const __m128i*>(job.solo[cam]));
  std::uint8_t* dst = job.out + y * job.out_stride;
  int x = x0;
  for (; x + kGroup <= x1; x += kGroup) {
    prefetch_ahead(ahead, x, job.width);
    if (!fast8_sse(m, x, limit)) {
      scalar_run(job, y, row, x, x + kGroup);
      continue;
    }
    __m128i o[kGroup];
    for (int k = 0; k < kGroup; ++k) {
      const __m128i sample = round_sample_sse(bilinear_sse(m, x + k, t, pairs));
      o[k] = shift_coef_sse(_mm_mullo_epi32(sample, gain));
    }
    store8_sse(dst + 3 * static_cast<std::ptrdiff_t>(x), o);
  }
  scalar_run(job, y, row, x, x1);
}

// The blend band [x0, x1) of row y.
PV_SSE41 PV_INLINE void band_run_sse(const StitchJob& job, int y, StitchRow row, int x0, int x1) {
  const WeightTables& t = weight_tables();
  const RowMaps ml = row_maps(job.camera[0], y, job.width);
  const RowMaps mr = row_maps(job.camera[1], y, job.width);
  const RowMaps ahead_l = rows_ahead(job, 0, y);
  const RowMaps ahead_r = rows_ahead(job, 1, y);
  const __m128i limit_l = _mm_set1_epi32(fast_limits_lane(job.camera[0]));
  const __m128i limit_r = _mm_set1_epi32(fast_limits_lane(job.camera[1]));
  const __m128i pairs = pair_shuffle_sse();
  // Coefficients of column x are at blend + 8 * (x - origin); x - origin is in [1, 2 band_half).
  const long long origin = static_cast<long long>(job.seam[y]) - job.band_half;
  std::uint8_t* dst = job.out + y * job.out_stride;
  int x = x0;
  for (; x + kGroup <= x1; x += kGroup) {
    prefetch_ahead(ahead_l, x, job.width);
    prefetch_ahead(ahead_r, x, job.width);
    if (!fast8_sse(ml, x, limit_l) || !fast8_sse(mr, x, limit_r)) {
      scalar_run(job, y, row, x, x + kGroup);
      continue;
    }
    __m128i o[kGroup];
    for (int k = 0; k < kGroup; ++k) {
      const std::int32_t* c = job.blend + 8 * (x + k - origin);
      const __m128i l = round_sample_sse(bilinear_sse(ml, x + k, t, pairs));
      const __m128i r = round_sample_sse(bilinear_sse(mr, x + k, t, pairs));
      const __m128i sum = _mm_add_epi32(
          _mm_mullo_epi32(l, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c))),
          _mm_mullo_epi32(r, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 4))));
      o[k] = shift_coef_sse(sum);
    }
    store8_sse(dst + 3 * static_cast<std::ptrdiff_t>(x), o);
  }
  scalar_run(job, y, row, x, x1);
}

PV_SSE41 PV_INLINE void simd_rows_body(const StitchJob& job, int y0, int y1) {
  for (int y = y0; y < y1; ++y) {
    const StitchRow row = stitch_row(job, y);
    solo_run_sse(job, y, row, 0, 0, row.left_end);
    band_run_sse(job, y, row, row.left_end, row.band_end);
    solo_run_sse(job, y, row, 1, row.band_end, job.width);
  }
}

PV_SSE41 void rows_sse41(const StitchJob& job, int y0, int y1) { simd_rows_body(job, y0, y1); }

// ------------------------------------------------------------------ AVX2 (256-bit) path
//
// The one-camera runs (all but the band's few columns) two pixels per register: pixel k of the
// group in the low lane, pixel k + 4 in the high one. The group's 8 source offsets come from one
// pmaddwd of the map entries with (3, row stride) -- so frames up to 10922 pixels wide (wider
// ones take the SSE4.1 code) -- and its 8 weight pairs from vector arithmetic on map2, broadcast
// to each lane with vpermd. The band runs the SSE4.1 code, VEX-encoded.

PV_AVX2 PV_INLINE __m128i footprint_avx2(const std::uint8_t* p, std::ptrdiff_t stride) {
  const __m128i top = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm_castpd_si128(
      _mm_loadh_pd(_mm_castsi128_pd(top), reinterpret_cast<const double*>(p + stride)));
}

PV_AVX2 PV_INLINE void solo_run_avx2(const StitchJob& job, int y, StitchRow row, int cam, int x0,
                                     int x1) {
  const StitchCamera& camera = job.camera[cam];
  if (camera.row_stride > 32767) {
    solo_run_sse(job, y, row, cam, x0, x1);
    return;
  }
  const RowMaps m = row_maps(camera, y, job.width);
  const RowMaps ahead = rows_ahead(job, cam, y);
  const __m256i limit = _mm256_set1_epi32(fast_limits_lane(camera));
  const __m256i address = _mm256_set1_epi32(static_cast<int>((camera.row_stride << 16) | 3));
  const __m256i pairs = _mm256_broadcastsi128_si256(pair_shuffle_sse());
  const __m256i gain =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(job.solo[cam])));
  const __m256i compact = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
  const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
  const __m256i lane_of[4] = {
      _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4), _mm256_setr_epi32(1, 1, 1, 1, 5, 5, 5, 5),
      _mm256_setr_epi32(2, 2, 2, 2, 6, 6, 6, 6), _mm256_setr_epi32(3, 3, 3, 3, 7, 7, 7, 7)};
  const __m256i zero = _mm256_setzero_si256();
  const __m256i five_bits = _mm256_set1_epi32(31);
  const __m256i thirty_two = _mm256_set1_epi32(32);
  std::uint8_t* dst = job.out + y * job.out_stride;
  alignas(32) std::int32_t offset[kGroup];
  int x = x0;
  for (; x + kGroup <= x1; x += kGroup) {
    prefetch_ahead(ahead, x, job.width);
    const __m256i xy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m.map1 + 2 * x));
    const __m256i bad =
        _mm256_or_si256(_mm256_cmpgt_epi16(zero, xy), _mm256_cmpgt_epi16(xy, limit));
    if (!_mm256_testz_si256(bad, bad)) {
      _mm256_zeroupper();
      scalar_run(job, y, row, x, x + kGroup);
      continue;
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(offset), _mm256_madd_epi16(xy, address));
    const __m256i f =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(m.map2 + x)));
    const __m256i fx = _mm256_and_si256(f, five_bits);
    const __m256i fy = _mm256_and_si256(_mm256_srli_epi32(f, 5), five_bits);
    const __m256i wx16 =
        _mm256_or_si256(_mm256_slli_epi32(fx, 8), _mm256_sub_epi32(thirty_two, fx));
    const __m256i wx = _mm256_or_si256(wx16, _mm256_slli_epi32(wx16, 16));
    const __m256i wy = _mm256_or_si256(_mm256_slli_epi32(fy, 16), _mm256_sub_epi32(thirty_two, fy));
    __m256i o[4];
    for (int k = 0; k < 4; ++k) {
      __m256i v = _mm256_inserti128_si256(
          _mm256_castsi128_si256(footprint_avx2(m.image + offset[k], m.stride)),
          footprint_avx2(m.image + offset[k + 4], m.stride), 1);
      v = _mm256_shuffle_epi8(v, pairs);
      v = _mm256_maddubs_epi16(v, _mm256_permutevar8x32_epi32(wx, lane_of[k]));
      v = _mm256_madd_epi16(v, _mm256_permutevar8x32_epi32(wy, lane_of[k]));
      v = _mm256_srai_epi32(_mm256_add_epi32(v, _mm256_set1_epi32(512)), 10);
      o[k] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(v, gain),
                                                _mm256_set1_epi32(1 << (kStitchCoefBits - 1))),
                               kStitchCoefBits);
    }
    // Lanes: [p0 p1 p2 p3 | p4 p5 p6 p7] as BGR0 bytes, then 12 + 12 bytes joined.
    __m256i bytes =
        _mm256_packus_epi16(_mm256_packus_epi32(o[0], o[1]), _mm256_packus_epi32(o[2], o[3]));
    bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(bytes, compact), join);
    std::uint8_t* d = dst + 3 * static_cast<std::ptrdiff_t>(x);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm256_castsi256_si128(bytes));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 16), _mm256_extracti128_si256(bytes, 1));
  }
  _mm256_zeroupper();
  scalar_run(job, y, row, x, x1);
}

// vzeroupper by hand: GCC 12 emitted none at this target-attribute function's exit, and the dirty
// upper register halves it left behind slowed the SSE code that ran next in the thread (OpenCV's
// remap took 1.7x as long right after a stitch).
PV_AVX2 void rows_avx2(const StitchJob& job, int y0, int y1) {
  for (int y = y0; y < y1; ++y) {
    const StitchRow row = stitch_row(job, y);
    solo_run_avx2(job, y, row, 0, 0, row.left_end);
    band_run_sse(job, y, row, row.left_end, row.band_end);
    solo_run_avx2(job, y, row, 1, row.band_end, job.width);
  }
  _mm256_zeroupper();
}

#endif  // PV_X86_SIMD

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

using RowsFn = void (*)(const StitchJob&, int, int);

struct CodePath {
  RowsFn rows;
  const char* name;
};

// The fastest path the CPU runs, or a slower one named by POLYVISION_STITCH_ISA ("sse4.1",
// "scalar"): the tests use it to check every path on one machine.
CodePath pick_path() {
  const char* wanted = std::getenv("POLYVISION_STITCH_ISA");
  const std::string limit = wanted != nullptr ? wanted : "";
  if (limit == "scalar") {
    return {scalar_rows, "scalar"};
  }
#if PV_X86_SIMD
  __builtin_cpu_init();
  if (limit != "sse4.1" && __builtin_cpu_supports("avx2")) {
    return {rows_avx2, "avx2"};
  }
  if (__builtin_cpu_supports("sse4.1")) {
    return {rows_sse41, "sse4.1"};
  }
#endif
  return {scalar_rows, "scalar"};
}

const CodePath& code_path() {
  static const CodePath path = pick_path();
  return path;
}

}  // namespace

void stitch_panorama(const StitchJob& job, int threads) {
  if (job.width <= 0 || job.height <= 0) {
    return;
  }
  const RowsFn rows = code_path().rows;
  const int tasks = (job.height + kRowsPerTask - 1) / kRowsPerTask;
  if (threads <= 0) {
    threads = default_threads();
  }
  threads = std::min(threads, tasks);
  std::atomic<int> next{0};
  const auto work = [&job, &next, tasks, rows]() {
    for (int task = next.fetch_add(1); task < tasks; task = next.fetch_add(1)) {
      const int y0 = task * kRowsPerTask;
      rows(job, y0, std::min(job.height, y0 + kRowsPerTask));
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // out of threads: the ones started (and this one) finish the rows
    }
  }
  work();
  for (std::thread& thread : pool) {
    thread.join();
  }
}

const char* stitch_code_path() { return code_path().name; }

}  // namespace polyvision
