// parallel.h — the one threading abstraction: an OpenMP team sized once (by the Engine, from --threads),
// shared with every GEMM backend (all use the same OpenMP runtime), its threads pinned one per CPU (thread i
// on the i-th CPU the process may use; GOMP keeps the same threads for every parallel region, so the team
// persists). Kernels receive row ranges from static partitions (parallel_for, static_range), so results
// do not depend on timing. Not a task scheduler.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace manylm {

enum class PinState { Off, NotPossible, Pinned };
struct Team {
  int threads;
  PinState pin;
};
// Sets the OpenMP team and the BLAS library to n threads (n <= 0: all hardware threads) and, with `pin`,
// pins them as pin_plan says, unless MANYLM_PIN=0 or OMP_PROC_BIND/GOMP_CPU_AFFINITY is set (the user
// binds). The node-local rank and rank count come from the launcher's environment (Open MPI, MPICH/Hydra,
// Slurm). The Engine's constructor calls it (engine.h); nothing else should.
Team start_team(int n, bool pin);
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
// calling thread, which is pinned to one CPU after start_team).
int cpu_count();
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

// fn(b, e) over a static contiguous partition of [0, n): thread t of the team gets static_range(n, t, nt)
// (the partition of `#pragma omp for schedule(static)`). One call fn(0, n) on the calling thread when
// n < min_parallel (too little work to pay for waking the team), with a team of one, or inside a parallel
// region. fn's own loop carries `#pragma omp simd` where it should vectorize.
template <typename F>
void parallel_for(int64_t n, int64_t min_parallel, F&& fn) {
  if (n <= 0) return;
  if (n < min_parallel || omp_in_parallel() || omp_get_max_threads() == 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const auto [b, e] = static_range(n, omp_get_thread_num(), omp_get_num_threads());
    if (b < e) fn(b, e);
  }
}

// Σ fn(b, e) over the same partition, the per-thread partial sums added in thread order: for a fixed thread
// count the result does not depend on timing (an OpenMP reduction's order is unspecified).
template <typename F>
double parallel_sum(int64_t n, int64_t min_parallel, F&& fn) {
  if (n <= 0) return 0.0;
  if (n < min_parallel || omp_in_parallel() || omp_get_max_threads() == 1) return fn(int64_t{0}, n);
  std::vector<double> part(static_cast<size_t>(omp_get_max_threads()), 0.0);
#pragma omp parallel
  {
    const int tid = omp_get_thread_num();
    const auto [b, e] = static_range(n, tid, omp_get_num_threads());
    if (b < e) part[static_cast<size_t>(tid)] = fn(b, e);
  }
  double s = 0.0;
  for (double p : part) s += p;
  return s;
}

}  // namespace manylm
