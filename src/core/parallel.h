// parallel.h — the one threading abstraction: an OpenMP team sized once by --threads, shared with every
// GEMM backend (all use the same OpenMP runtime), its threads pinned one per CPU (thread i on the i-th CPU
// the process may use; GOMP keeps the same threads for every parallel region, so the team persists).
// Kernels receive row ranges from static partitions, so results do not depend on timing.
// Not a task scheduler.
#pragma once
#include <cstdint>
#include <algorithm>
#include <utility>
#include <vector>

namespace manylm {

// Sets the OpenMP team and the BLAS library to n threads (n <= 0: all hardware threads) and pins them as
// pin_plan says, unless MANYLM_PIN=0 or OMP_PROC_BIND/GOMP_CPU_AFFINITY is set (the user binds). The
// node-local rank and rank count come from the launcher's environment (Open MPI, MPICH/Hydra, Slurm).
// Returns n used.
int set_threads(int n);
// Where thread i of n goes (empty: leave placement to the OS), given the CPUs this process may use, its
// node-local rank and the node's rank count (-1: unknown) and the node's CPU count:
//   fewer than n CPUs: oversubscribed, empty;
//   the only process (no local rank, or the node's only rank): cpus[i];
//   a mask narrower than the node: exactly n CPUs (the launcher bound this rank) or rank count unknown
//   (Slurm's per-task mask): cpus[i]; wider and shared by several ranks (e.g. a socket): empty, since which
//   ranks share it is unknown here; bind each rank to n cores to have them pinned (see README);
//   the whole node, shared by several ranks: rank k's threads on cpus[k·n + i], if every rank's fit (empty
//   when the ranks oversubscribe the node: pinning would stack them).
std::vector<int> pin_plan(const std::vector<int>& cpus, int n, int local_rank, int local_size, int node_cpus);
int num_threads();
// CPUs this process may use (its affinity when manylm first asked; omp_get_num_procs() would answer for the
// calling thread, which is pinned to one CPU after set_threads).
int cpu_count();
enum class PinState { Off, NotPossible, Pinned };
PinState pin_state();
// A helper thread (the MPI progress thread) gives up the pinning it inherited: any CPU of the process.
void unpin_current_thread();

// Static contiguous partition of [0, n) for thread `tid` of `nt`.
inline std::pair<int64_t, int64_t> static_range(int64_t n, int tid, int nt) {
  int64_t q = n / nt, r = n % nt;
  int64_t b = tid * q + (tid < r ? tid : r);
  return {b, b + q + (tid < r ? 1 : 0)};
}

// The same partition in blocks of `align` (a PackedB panel): thread tid's columns [16·p0, min(n, 16·p1))
// when its panels are static_range(panels, tid, nt). Ranges that match a thread's panels let it use what its
// own share of a packed product wrote without waiting for the others, and keep threads off each other's
// cache lines.
inline std::pair<int64_t, int64_t> static_range_aligned(int64_t n, int tid, int nt, int64_t align) {
  const auto [b0, b1] = static_range((n + align - 1) / align, tid, nt);
  return {std::min(n, b0 * align), std::min(n, b1 * align)};
}

}  // namespace manylm
