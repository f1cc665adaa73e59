// parallel.cc — see parallel.h.
#include "core/parallel.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace manylm {

namespace {

// The CPUs this process was allowed to use when manylm first touched the team (before any pinning).
const cpu_set_t& process_mask() {
  static const cpu_set_t mask = [] {
    cpu_set_t m;
    CPU_ZERO(&m);
    if (sched_getaffinity(0, sizeof m, &m) != 0)
      for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &m);
    return m;
  }();
  return mask;
}

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &process_mask())) cpus.push_back(c);
  return cpus;
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

}  // namespace

int cpu_count() { return CPU_COUNT(&process_mask()); }

std::vector<int> pin_plan(const std::vector<int>& cpus, int n, int local_rank, int local_size, int node_cpus) {
  const int have = static_cast<int>(cpus.size());
  if (n <= 0 || have < n) return {};
  const std::vector<int> first_n(cpus.begin(), cpus.begin() + n);
  if (local_rank < 0 || local_size == 1) return first_n;  // the only process here
  if (have < node_cpus) {
    // A mask the launcher chose: exactly this rank's CPUs, or (rank count unknown: srun without
    // --ntasks-per-node) Slurm's per-task mask; a wider one shared by a known number of ranks (Open MPI's
    // socket binding) cannot be split without knowing which ranks share it.
    return have == n || local_size < 0 ? first_n : std::vector<int>{};
  }
  // The whole node, shared by several ranks: consecutive blocks by node-local rank, if all fit.
  const int ranks = local_size > 0 ? local_size : local_rank + 1;
  if (static_cast<int64_t>(ranks) * n > have || local_rank >= ranks) return {};
  const auto from = cpus.begin() + static_cast<std::ptrdiff_t>(local_rank) * n;
  return {from, from + n};
}

Team start_team(int n, bool pin) {
  if (n <= 0) n = cpu_count();
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  const bool user_binds = std::getenv("OMP_PROC_BIND") || std::getenv("GOMP_CPU_AFFINITY");
  if (!pin || env_int("MANYLM_PIN", 1) == 0 || user_binds) return {n, PinState::Off};
  // The node-local rank and rank count as Open MPI, MPICH/Hydra or Slurm's srun give them.
  auto first_env = [](std::initializer_list<const char*> names) {
    for (const char* name : names)
      if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
    return -1;
  };
  const int local_rank = first_env({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"});
  const int local_size = first_env({"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"});
  const std::vector<int> plan =
      pin_plan(allowed_cpus(), n, local_rank, local_size, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  if (plan.empty()) return {n, PinState::NotPossible};
#pragma omp parallel num_threads(n)
  {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(plan[static_cast<size_t>(omp_get_thread_num())], &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  }
  return {n, PinState::Pinned};
}

int num_threads() { return omp_get_max_threads(); }

void unpin_current_thread() { pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), &process_mask()); }

}  // namespace manylm
