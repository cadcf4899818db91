// The virtual camera's renderer on a CUDA device: one thread per output pixel running the CPU
// renderer's per-pixel float code (vcam_pixel in vcam_render.hpp; this file is built with
// --fmad=false so no multiply-add is fused and the two give the same bytes). The panorama is
// copied to the device and the view back inside each call, as the stitch kernel's twin does.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "vcam_render.hpp"

namespace polyvision::cuda {

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("vcam_render_cuda: ") + what + ": " +
                             cudaGetErrorString(status));
  }
}

// A device allocation freed when it goes out of scope.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) {
    if (bytes > 0) {
      check(cudaMalloc(&ptr_, bytes), "cudaMalloc");
    }
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) {
      cudaFree(ptr_);
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* get() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

// One thread per output pixel; rows beyond the grid's 65535-block height limit loop.
__global__ void vcam_kernel(VcamJob job) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= job.out_width) {
    return;
  }
  const VcamLimits lim = vcam_limits(job);
  for (int j = static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y); j < job.out_height;
       j += static_cast<int>(gridDim.y * blockDim.y)) {
    vcam_pixel(job, lim, vcam_row(job, j), i, job.out + j * job.out_stride + 3 * i);
  }
}

}  // namespace

void vcam_render(const VcamJob& host, int /*threads*/) {
  if (host.out_width <= 0 || host.out_height <= 0) {
    return;
  }
  VcamJob job = host;
  const std::size_t pano_row = 3 * static_cast<std::size_t>(host.pano_width);
  DeviceBuffer panorama(pano_row * static_cast<std::size_t>(host.pano_height));
  check(cudaMemcpy2D(panorama.get<void>(), pano_row, host.panorama,
                     static_cast<std::size_t>(host.pano_stride), pano_row,
                     static_cast<std::size_t>(host.pano_height), cudaMemcpyHostToDevice),
        "copying the panorama");
  job.panorama = panorama.get<const std::uint8_t>();
  job.pano_stride = static_cast<std::ptrdiff_t>(pano_row);

  const std::size_t out_row = 3 * static_cast<std::size_t>(host.out_width);
  DeviceBuffer out(out_row * static_cast<std::size_t>(host.out_height));
  job.out = out.get<std::uint8_t>();
  job.out_stride = static_cast<std::ptrdiff_t>(out_row);

  const dim3 block(32, 8);
  const unsigned rows = (static_cast<unsigned>(host.out_height) + block.y - 1) / block.y;
  const dim3 grid((static_cast<unsigned>(host.out_width) + block.x - 1) / block.x,
                  rows < 65535U ? rows : 65535U);
  vcam_kernel<<<grid, block>>>(job);
  check(cudaGetLastError(), "launching the kernel");
  check(cudaMemcpy2D(host.out, static_cast<std::size_t>(host.out_stride), out.get<void>(), out_row,
                     out_row, static_cast<std::size_t>(host.out_height), cudaMemcpyDeviceToHost),
        "copying the view back");
}

}  // namespace polyvision::cuda
