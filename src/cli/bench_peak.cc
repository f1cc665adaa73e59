// bench_peak.cc — `manylm bench peak`: FP32 FMA peak, bf16 dot-product peak (AVX512_BF16) and triad
// memory bandwidth for each thread count. The FP32 figure is the denominator of every "% of peak".
#include <fmt/format.h>

#include "cli/bench.h"
#include "core/machine.h"

namespace manylm {

int bench_peak(const BenchOptions& o) {
  BenchTable t("bench peak", {"threads", "fp32_gflops", "fp32_gflops_per_thread", "bf16_gflops", "triad_gbs"});
  for (int th : thread_list(o)) {
    std::vector<double> f, b, m;
    for (int r = 0; r < o.repeats; ++r) {
      f.push_back(measure_fp32_peak(th, 0.3).gflops);
      b.push_back(measure_bf16_peak(th, 0.3).gflops);
      m.push_back(measure_triad_gbs(th, 64, 2));
    }
    const double fp = median(f);
    t.add({std::to_string(th), fmt::format("{:.1f}", fp), fmt::format("{:.1f}", fp / th),
           cpu_has_avx512_bf16() ? fmt::format("{:.1f}", median(b)) : "n/a", fmt::format("{:.1f}", median(m))});
  }
  t.print(o);
  return 0;
}

}  // namespace manylm
