#pragma once

#include <cstddef>
#include <cstdint>

namespace polyvision {

// Feather-blends two interleaved 8-bit images of the same shape with a per-pixel
// weight for the first one: out = round(w * a + (1 - w) * b), w clamped to [0, 1].
// Plain pointers so the loop can run without the GIL and be reused by the CUDA path.
void feather_blend(const std::uint8_t* a, const std::uint8_t* b, const float* weight,
                   std::uint8_t* out, std::size_t pixels, std::size_t channels);

}  // namespace polyvision
