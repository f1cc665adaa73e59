// concurrent_gemms.cc — an experiment kept because its result decided a design question: on 2 threads,
// does running two independent products of a training step side by side (one thread each, the library
// alone on its thread) beat running them one after the other with the whole team inside the library?
// Pairs: ptb-medium's output-layer backward (d decoder weight ‖ d top activations) and one LSTM layer's
// weight gradients (d W_ih ‖ d W_hh). Every backend pair is tried; each round alternates all variants,
// and the medians are printed with % of the FP32 peak measured in the same run.
// Usage: build/concurrent_gemms_experiment [rounds=7]
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "core/engine.h"
#include "core/gemm.h"
#include "core/machine.h"
#include "core/parallel.h"

using namespace manylm;

namespace {

struct Product {
  Trans ta, tb;
  int64_t M, N, K;
  GemmBackend team_choice;  // what --gemm auto picked for it on 2 threads here
  std::vector<float> A, B, C;
  Product(Trans ta_, Trans tb_, int64_t M_, int64_t N_, int64_t K_, GemmBackend b)
      : ta(ta_), tb(tb_), M(M_), N(N_), K(K_), team_choice(b), A(M_ * K_, 0.01f), B(K_ * N_, 0.02f), C(M_ * N_) {}
  void run(const Engine& e, GemmBackend b) {
    gemm_with(e, b, ta, tb, M, N, K, 1.0f, A.data(), ta == Trans::N ? K : M, B.data(), tb == Trans::N ? N : K, 0.0f,
              C.data(), N);
  }
  double gflop() const { return 2e-9 * static_cast<double>(M) * N * K; }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds(auto&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  EngineOptions eo;
  eo.threads = 2;
  const Engine engine(eo);
  const double peak = measure_fp32_peak(2, 0.3).gflops;
  fmt::print("# 2 threads, FP32 peak {:.1f} GFLOP/s; medians of {} rounds\n", peak, rounds);
  const GemmBackend backends[] = {GemmBackend::Blas, GemmBackend::OneDnn, GemmBackend::Blis};
  struct Pair {
    const char* name;
    Product a, b;
  };
  std::vector<Pair> pairs;
  pairs.push_back({"output backward: TN 10000x650x700 | NN 700x650x10000",
                   Product(Trans::T, Trans::N, 10000, 650, 700, GemmBackend::Blis),
                   Product(Trans::N, Trans::N, 700, 650, 10000, GemmBackend::OneDnn)});
  pairs.push_back({"LSTM weight grads: TN 2600x650x700 | TN 2600x650x700",
                   Product(Trans::T, Trans::N, 2600, 650, 700, GemmBackend::Blis),
                   Product(Trans::T, Trans::N, 2600, 650, 700, GemmBackend::Blis)});
  for (Pair& p : pairs) {
    const double gf = p.a.gflop() + p.b.gflop();
    std::vector<double> seq;
    std::vector<std::vector<double>> side(9);
    auto sequential = [&] { p.a.run(engine, p.a.team_choice), p.b.run(engine, p.b.team_choice); };
    auto side_by_side = [&](GemmBackend x, GemmBackend y) {
#pragma omp parallel num_threads(2)
      {
        if (omp_get_thread_num() == 0)
          p.a.run(engine, x);  // inside a parallel region: the library runs on this thread
        else
          p.b.run(engine, y);
      }
    };
    sequential();  // warm-up: plans, JIT, page faults
    for (GemmBackend x : backends)
      for (GemmBackend y : backends) side_by_side(x, y);
    for (int r = 0; r < rounds; ++r) {
      seq.push_back(seconds(sequential));
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) side[i * 3 + j].push_back(seconds([&] { side_by_side(backends[i], backends[j]); }));
    }
    fmt::print("{}\n  one after the other, team inside the library ({} then {}): {:.1f} ms, {:.1f} % of peak\n", p.name,
               name_of(p.a.team_choice), name_of(p.b.team_choice), 1e3 * median(seq), 100 * gf / median(seq) / peak);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        fmt::print("  side by side, {} | {}: {:.1f} ms, {:.1f} % of peak\n", name_of(backends[i]), name_of(backends[j]),
                   1e3 * median(side[i * 3 + j]), 100 * gf / median(side[i * 3 + j]) / peak);
  }
  return 0;
}
