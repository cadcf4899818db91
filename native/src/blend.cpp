#include "polyvision/blend.hpp"

#include <algorithm>

namespace polyvision {

void feather_blend(const std::uint8_t* a, const std::uint8_t* b, const float* weight,
                   std::uint8_t* out, std::size_t pixels, std::size_t channels) {
  for (std::size_t p = 0; p < pixels; ++p) {
    const float w = std::clamp(weight[p], 0.0F, 1.0F);
    const std::size_t base = p * channels;
    for (std::size_t c = 0; c < channels; ++c) {
      const float v = w * static_cast<float>(a[base + c]) +
                      (1.0F - w) * static_cast<float>(b[base + c]);
      // v is within [0, 255] because w is clamped, so +0.5 truncation rounds correctly.
      out[base + c] = static_cast<std::uint8_t>(v + 0.5F);
    }
  }
}

}  // namespace polyvision
