// parallel.cc — see parallel.h.
#include "core/parallel.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
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

PinState g_pin = PinState::Off;

}  // namespace

int cpu_count() { return CPU_COUNT(&process_mask()); }

int set_threads(int n) {
  if (n <= 0) n = cpu_count();
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  const std::vector<int> cpus = allowed_cpus();
  // Ranks of one job that share a node without a binding each see every CPU: pinning them all from CPU 0
  // would stack them, so the launcher's placement (or the OS) decides there.
  const int local_ranks = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  const bool user_binds = std::getenv("OMP_PROC_BIND") || std::getenv("GOMP_CPU_AFFINITY");
  if (env_int("MANYLM_PIN", 1) == 0 || user_binds) {
    g_pin = PinState::Off;
  } else if (static_cast<int>(cpus.size()) < n || (local_ranks > 1 && static_cast<int>(cpus.size()) == static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)))) {
    g_pin = PinState::NotPossible;
  } else {
#pragma omp parallel num_threads(n)
    {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[static_cast<size_t>(omp_get_thread_num())], &one);
      pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    }
    g_pin = PinState::Pinned;
  }
  return n;
}

int num_threads() { return omp_get_max_threads(); }

PinState pin_state() { return g_pin; }

void unpin_current_thread() { pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), &process_mask()); }

}  // namespace manylm
