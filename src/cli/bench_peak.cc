// bench_peak.cc — `manylm bench peak`: FP32 FMA peak, bf16 dot-product peak (AVX512_BF16) and triad
// memory bandwidth for each thread count. The FP32 figure is the denominator of every "% of peak".
// Beside it, the GEMM ceiling: the fastest that any GEMM library here runs one large, well-shaped FP32
// product (1536³, every available backend, median of the repeats each) — what a training step made of
// GEMMs can hope for on this machine, as opposed to what its FMA units can do.
#include <fmt/format.h>

#include <chrono>
#include <random>
#include <vector>

#include "cli/bench.h"
#include "core/gemm.h"
#include "core/machine.h"

namespace manylm {

namespace {

struct Ceiling {
  double gflops = 0;
  std::string backend = "n/a";
};

Ceiling gemm_ceiling(int repeats) {
  constexpr int64_t n = 1536;
  std::vector<float> a(n * n), b(n * n), c(n * n);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto* v : {&a, &b})
    for (float& x : *v) x = u(rng);
  Ceiling best;
  for (GemmBackend be : {GemmBackend::Blas, GemmBackend::OneDnn, GemmBackend::Blis, GemmBackend::Libxsmm}) {
    if (!gemm_backend_available(be, nullptr)) continue;
    auto once = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      gemm_with(be, Trans::N, Trans::N, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    once();  // warm-up: library threads, JIT, pages
    std::vector<double> g;
    for (int r = 0; r < std::max(3, repeats); ++r) g.push_back(2.0 * n * n * n / once() / 1e9);
    const double m = median(g);
    if (m > best.gflops) best = {m, gemm_backend_name(be)};
  }
  return best;
}

}  // namespace

int bench_peak(const BenchOptions& o) {
  BenchTable t("bench peak", {"threads", "fp32_gflops", "fp32_gflops_per_thread", "bf16_gflops", "triad_gbs",
                              "gemm_ceiling_gflops", "gemm_ceiling_pct", "gemm_ceiling_backend"});
  for (int th : thread_list(o)) {
    set_threads(th);  // before measuring: a team pinned for fewer threads would crowd these onto its CPUs
    std::vector<double> f, b, m;
    for (int r = 0; r < o.repeats; ++r) {
      f.push_back(measure_fp32_peak(th, 0.3).gflops);
      b.push_back(measure_bf16_peak(th, 0.3).gflops);
      m.push_back(measure_triad_gbs(th, 64, 2));
    }
    const double fp = median(f);
    const Ceiling ceil = gemm_ceiling(o.repeats);
    t.add({std::to_string(th), fmt::format("{:.1f}", fp), fmt::format("{:.1f}", fp / th),
           cpu_has_avx512_bf16() ? fmt::format("{:.1f}", median(b)) : "n/a", fmt::format("{:.1f}", median(m)),
           fmt::format("{:.1f}", ceil.gflops), fmt::format("{:.1f}", 100.0 * ceil.gflops / fp), ceil.backend});
  }
  t.print(o);
  return 0;
}

}  // namespace manylm
