// bench_peak.cc — `manylm bench peak`: FP32 FMA peak, bf16 dot-product peak (AVX512_BF16) and triad
// memory bandwidth for each thread count. The FP32 figure is the denominator of every "% of peak": the best of
// --repeats measurements before the GEMM ceiling (bench.h) and one after it, each the best of 3 ms windows (a
// capability: load from elsewhere and the clock's drops can only lower a measurement). Triad: the median.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "cli/bench.h"
#include "core/engine.h"
#include "core/gemm.h"
#include "core/machine.h"

namespace manylm {

int bench_peak(const BenchOptions& o) {
  BenchTable t("bench peak", {"threads", "fp32_gflops", "fp32_gflops_per_thread", "bf16_gflops", "triad_gbs",
                              "gemm_ceiling_gflops", "gemm_ceiling_pct", "gemm_ceiling_backend"});
  for (int th : thread_list(o)) {
    EngineOptions eo;
    eo.threads = th;
    const Engine engine(eo);  // before measuring: a team pinned for fewer threads would crowd these onto its CPUs
    std::vector<double> f, b, m;
    for (int r = 0; r < o.repeats; ++r) {
      f.push_back(measure_fp32_peak(th, 0.3).gflops);
      b.push_back(measure_bf16_peak(th, 0.3).gflops);
      m.push_back(measure_triad_gbs(th, 64, 2));
    }
    const GemmCeiling ceil = measure_gemm_ceiling(engine, o.repeats);
    f.push_back(measure_fp32_peak(th, 0.3).gflops);
    b.push_back(measure_bf16_peak(th, 0.3).gflops);
    const double fp = *std::max_element(f.begin(), f.end());
    t.add({std::to_string(th), fmt::format("{:.1f}", fp), fmt::format("{:.1f}", fp / th),
           cpu_has_avx512_bf16() ? fmt::format("{:.1f}", *std::max_element(b.begin(), b.end())) : "n/a",
           fmt::format("{:.1f}", median(m)), fmt::format("{:.1f}", ceil.gflops),
           fmt::format("{:.1f}", 100.0 * ceil.gflops / fp), ceil.backend});
  }
  t.print(o);
  return 0;
}

}  // namespace manylm
