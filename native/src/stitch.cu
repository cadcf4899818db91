// The panorama stitch kernel on a CUDA device: one thread per output pixel running the same
// integer arithmetic as the CPU kernel's reference path (polyvision/stitch.hpp), so the two give
// the same bytes. Host-device copies happen inside each call.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "polyvision/stitch.hpp"
#include "polyvision/stitch_cuda.hpp"

namespace polyvision::cuda {

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("stitch_panorama_cuda: ") + what + ": " +
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
__global__ void stitch_kernel(StitchJob job) {
  const int x = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (x >= job.width) {
    return;
  }
  for (int y = static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y); y < job.height;
       y += static_cast<int>(gridDim.y * blockDim.y)) {
    stitch_pixel(job, x, y, stitch_row(job, y), job.out + y * job.out_stride + 3 * x);
  }
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // reset the error state so a later call does not report it
    return 0;
  }
  return count;
}

void stitch_panorama(const StitchJob& host) {
  if (host.width <= 0 || host.height <= 0) {
    return;
  }
  const std::size_t pixels = static_cast<std::size_t>(host.width) * host.height;
  StitchJob job = host;

  // Frames: packed rows on the device, whatever the host row stride.
  DeviceBuffer frames[2] = {
      DeviceBuffer(3 * static_cast<std::size_t>(host.camera[0].width) * host.camera[0].height),
      DeviceBuffer(3 * static_cast<std::size_t>(host.camera[1].width) * host.camera[1].height)};
  DeviceBuffer map1[2] = {DeviceBuffer(4 * pixels), DeviceBuffer(4 * pixels)};
  DeviceBuffer map2[2] = {DeviceBuffer(2 * pixels), DeviceBuffer(2 * pixels)};
  for (int cam = 0; cam < 2; ++cam) {
    const StitchCamera& src = host.camera[cam];
    StitchCamera& dst = job.camera[cam];
    const std::size_t row_bytes = 3 * static_cast<std::size_t>(src.width);
    if (row_bytes > 0 && src.height > 0) {
      check(cudaMemcpy2D(frames[cam].get<void>(), row_bytes, src.image,
                         static_cast<std::size_t>(src.row_stride), row_bytes,
                         static_cast<std::size_t>(src.height), cudaMemcpyHostToDevice),
            "copying a frame");
    }
    check(cudaMemcpy(map1[cam].get<void>(), src.map1, 4 * pixels, cudaMemcpyHostToDevice),
          "copying map1");
    check(cudaMemcpy(map2[cam].get<void>(), src.map2, 2 * pixels, cudaMemcpyHostToDevice),
          "copying map2");
    dst.image = frames[cam].get<const std::uint8_t>();
    dst.row_stride = static_cast<std::ptrdiff_t>(row_bytes);
    dst.map1 = map1[cam].get<const std::int16_t>();
    dst.map2 = map2[cam].get<const std::uint16_t>();
  }
  const std::size_t seam_bytes = sizeof(std::int32_t) * host.height;
  const std::size_t table_bytes = sizeof(std::int32_t) * 8 * (2 * std::size_t(host.band_half) + 1);
  DeviceBuffer seam(seam_bytes);
  DeviceBuffer table(table_bytes);
  check(cudaMemcpy(seam.get<void>(), host.seam, seam_bytes, cudaMemcpyHostToDevice),
        "copying the seam");
  check(cudaMemcpy(table.get<void>(), host.blend, table_bytes, cudaMemcpyHostToDevice),
        "copying the blend table");
  job.seam = seam.get<const std::int32_t>();
  job.blend = table.get<const std::int32_t>();

  const std::size_t out_row = 3 * static_cast<std::size_t>(host.width);
  DeviceBuffer out(out_row * host.height);
  job.out = out.get<std::uint8_t>();
  job.out_stride = static_cast<std::ptrdiff_t>(out_row);

  const dim3 block(32, 8);
  const unsigned rows = (static_cast<unsigned>(host.height) + block.y - 1) / block.y;
  const dim3 grid((static_cast<unsigned>(host.width) + block.x - 1) / block.x,
                  rows < 65535U ? rows : 65535U);
  stitch_kernel<<<grid, block>>>(job);
  check(cudaGetLastError(), "launching the kernel");
  check(cudaMemcpy2D(host.out, static_cast<std::size_t>(host.out_stride), out.get<void>(), out_row,
                     out_row, static_cast<std::size_t>(host.height), cudaMemcpyDeviceToHost),
        "copying the panorama back");
}

}  // namespace polyvision::cuda
