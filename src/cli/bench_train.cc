// bench_train.cc — `manylm bench train --recipe R`: the real training step (train_step, the function the
// trainer calls) on the recipe's model and data: tokens/s, GFLOP/s, % of the FP32 (or, with
// --precision-list bf16, the bf16 dot-product) peak measured in the same run (before and after the
// steps, the larger), with --ceiling also % of the GEMM ceiling, and time per phase (embedding,
// recurrent forward, output+softmax, output backward, recurrent backward, embedding backward,
// clip+update), medians over --repeats.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "cli/bench.h"
#include "core/engine.h"
#include "core/gemm.h"
#include "core/kernels.h"
#include "core/machine.h"
#include "core/parallel.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "train/options.h"
#include "train/trainer.h"

namespace manylm {

double step_flops(const ModelShape& s, int64_t T, int64_t B) {
  const double G = static_cast<double>(s.gates() * s.hidden);
  double f = 2.0 * T * B * s.vocab * s.hidden;  // output layer
  for (int64_t l = 0; l < s.layers; ++l) f += 2.0 * T * B * G * (s.layer_input(l) + s.hidden);
  return 3.0 * f;  // forward, backward-data, backward-weights
}

int bench_train(const BenchOptions& o) {
  Config c = config_from_json_file(o.recipe);
  if (!o.data.empty()) c.data = o.data;
  c.validate();
  const Vocab vocab = build_vocab(c.train_path(), parse_token_mode(c.tokens), c.vocab_size, c.min_count);
  const TokenIds ids = TokenIds::load(c.train_path(), vocab, c.cache_dir.empty() ? default_cache_dir() : c.cache_dir);
  const Batcher batcher(ids.ids(), c.batch, c.bptt, c.train_path());
  const ModelShape shape = c.model_shape(vocab.size());
  const double flops = step_flops(shape, c.bptt, c.batch);
  BenchTable t("bench train " + o.recipe,
               {"backend", "precision", "threads", "tokens_per_s", "gflops", "pct_peak", "ceiling_pct_peak", "pct_of_ceiling", "step_ms", "embed_ms", "rec_fwd_ms", "out_fwd_ms",
                "out_bwd_ms", "rec_bwd_ms", "embed_bwd_ms", "update_ms", "average_ms"});
  BenchTable prof("bench train --gemm-profile " + o.recipe,
                  {"backend", "precision", "threads", "gemm", "calls_per_step", "ms_per_step", "pct_of_step", "gflops", "pct_peak", "variant"});
  std::vector<std::string> precisions;
  {
    std::stringstream in(o.precisions);
    for (std::string p; std::getline(in, p, ',');) {
      parse_precision(p);
      precisions.push_back(p);
    }
  }
  for (const std::string& backend : backend_list(o))
  for (const std::string& precision : precisions)
  for (int th : thread_list(o)) {
    if (precision == "bf16" && backend != "onednn") continue;
    if (parse_precision(precision) == Precision::Bf16 && !bf16_supported()) {
      fmt::print(stderr, "bench train: this CPU has no AVX512_BF16: bf16 skipped\n");
      continue;
    }
    EngineOptions eo;
    eo.threads = th;
    eo.backend = parse_gemm_backend(backend);
    eo.precision = parse_precision(precision);
    eo.packed_recurrent = !o.no_packed;
    const Engine engine(eo);
    // % of the peak of the precision measured: FP32 FMA, or bf16 dot products.
    // Measured before and after the timed steps, the larger kept: on a shared machine a neighbour's burst
    // can only lower a measured peak, and a low denominator would inflate every percentage.
    auto measure_peak = [&] { return precision == "bf16" ? measure_bf16_peak(th, 0.3).gflops : measure_fp32_peak(th, 0.3).gflops; };
    double peak = measure_peak();
    // The GEMM ceiling (FP32 only): how near the step comes to the best any library does on an ideal shape.
    const double ceiling = o.ceiling && precision == "fp32" ? measure_gemm_ceiling(engine, 3).gflops : 0.0;
    Arena params(param_table(shape)), grads(param_table(shape)), hidden(state_table(shape, c.batch));
    init_uniform(params, c.seed, c.init);
    Optimizer opt(c, params.table());
    Workspace ws(shape, c.bptt, c.batch, c.dropout > 0);
    const DropoutConfig drop{static_cast<float>(c.dropout), c.dropout_mask == "variational", c.seed, 0, 0, c.batch};
    std::vector<int32_t> x, y;
    int64_t step = 0;
    // A recipe with --average-from: the trainer's running mean after each update (timed apart, in the step).
    Arena average;
    if (c.average_from > 0) average = Arena(param_table(shape));
    double average_seconds = 0;
    auto run = [&](int n, PhaseTimes* times) {
      for (int i = 0; i < n; ++i, ++step) {
        const int64_t len = batcher.window(step % batcher.windows(), 0, c.batch, x, y);
        train_step(engine, shape, params, grads, hidden, ws, opt, drop, x.data(), y.data(), len, c.batch, c.clip, c.lr, step, times);
        if (c.average_from > 0) {
          const auto t0 = std::chrono::steady_clock::now();
          running_mean(average.data(), params.data(), static_cast<int64_t>(params.size()), step + 1);
          if (times) average_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
      }
    };
    run(3, nullptr);  // warm-up
    std::vector<double> secs;
    std::vector<PhaseTimes> phases;
    std::vector<double> average_ms;
    for (int r = 0; r < o.repeats; ++r) {
      PhaseTimes p;
      average_seconds = 0;
      const auto t0 = std::chrono::steady_clock::now();
      run(o.steps, &p);
      secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / o.steps);
      phases.push_back(p);
      average_ms.push_back(average_seconds / o.steps * 1e3);
    }
    const double s = median(secs);
    peak = std::max(peak, measure_peak());
    if (o.gemm_profile) {  // one more repeat with every gemm() call timed (costs a clock read per call)
      engine.profile(true);
      run(o.steps, nullptr);
      const auto entries = engine.profile_entries();
      engine.profile(false);
      double total = 0;
      for (const auto& e : entries) total += e.seconds;
      for (const auto& e : entries) {
        const double gf = 2.0 * e.M * e.N * e.K * e.calls * 1e-9;
        prof.add({backend, precision, std::to_string(th), e.signature, fmt::format("{:.1f}", double(e.calls) / o.steps),
                  fmt::format("{:.2f}", e.seconds / o.steps * 1e3), fmt::format("{:.1f}", 100 * e.seconds / (s * o.steps)),
                  fmt::format("{:.1f}", gf / e.seconds), fmt::format("{:.1f}", 100 * gf / e.seconds / peak), e.variant});
      }
      prof.add({backend, precision, std::to_string(th), "all GEMMs", "", fmt::format("{:.2f}", total / o.steps * 1e3),
                fmt::format("{:.1f}", 100 * total / (s * o.steps)), "", "", ""});
    }
    auto ms = [&](double PhaseTimes::*f) {
      std::vector<double> v;
      for (const auto& p : phases) v.push_back(p.*f / o.steps * 1e3);
      return fmt::format("{:.2f}", median(v));
    };
    t.add({backend, precision, std::to_string(th), fmt::format("{:.0f}", c.bptt * c.batch / s), fmt::format("{:.1f}", flops / s * 1e-9),
           fmt::format("{:.1f}", 100 * flops / s * 1e-9 / peak),
           ceiling > 0 ? fmt::format("{:.1f}", 100 * ceiling / peak) : "n/a",
           ceiling > 0 ? fmt::format("{:.1f}", 100 * flops / s * 1e-9 / ceiling) : "n/a", fmt::format("{:.2f}", s * 1e3),
           ms(&PhaseTimes::embed),
           ms(&PhaseTimes::recurrent_fwd), ms(&PhaseTimes::output_fwd), ms(&PhaseTimes::output_bwd),
           ms(&PhaseTimes::recurrent_bwd), ms(&PhaseTimes::embed_bwd), ms(&PhaseTimes::update),
           c.average_from > 0 ? fmt::format("{:.2f}", median(average_ms)) : "n/a"});
  }
  t.print(o);
  if (o.gemm_profile) prof.print(o);
  return 0;
}

}  // namespace manylm
