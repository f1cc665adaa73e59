// parallel.h — the one threading abstraction: an OpenMP team sized once by --threads, shared with the
// BLAS backend. Kernels receive row ranges from static partitions, so results do not depend on timing.
// Not a task scheduler.
#pragma once
#include <cstdint>
#include <utility>

namespace manylm {

// Sets the OpenMP team and the BLAS library to n threads (n <= 0: all hardware threads). Returns n used.
int set_threads(int n);
int num_threads();

// Static contiguous partition of [0, n) for thread `tid` of `nt`.
inline std::pair<int64_t, int64_t> static_range(int64_t n, int tid, int nt) {
  int64_t q = n / nt, r = n % nt;
  int64_t b = tid * q + (tid < r ? tid : r);
  return {b, b + q + (tid < r ? 1 : 0)};
}

}  // namespace manylm
