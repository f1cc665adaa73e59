// bench_train.cc — `manylm bench train --recipe R`: the real training step (train_step, the function the
// trainer calls) on the recipe's model and data: tokens/s, GFLOP/s, % of the FP32 (or, with
// --precision-list bf16, the bf16 dot-product) peak measured in the same run (the best of its measurements
// between repeats), with --ceiling also % of the GEMM ceiling, and time per phase (embedding, recurrent
// forward, output+softmax, output backward, recurrent backward, embedding backward, clip+update), medians
// over --repeats. Repeats alternate: repeat r of every (backend, precision, threads) case runs before repeat
// r+1 of any, so a slow spell of a shared machine falls on all cases alike, not on one case's turn; each
// case keeps its own model state from repeat to repeat.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/bench.h"
#include "core/engine.h"
#include "core/gemm.h"
#include "core/kernels.h"
#include "core/machine.h"
#include "core/parallel.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/synthetic.h"
#include "train/options.h"
#include "train/trainer.h"

namespace manylm {

// The step's FLOP: forward, backward-data and backward-weights of every product. An adaptive softmax's tails
// count the rows the step routed to them (not the padding of their blocks).
double step_flops(const ModelShape& s, const AdaptiveWork& w, int64_t T, int64_t B) {
  const double G = static_cast<double>(s.gates() * s.hidden), R = static_cast<double>(T * B);
  double f = 2.0 * R * static_cast<double>(s.head_size() * s.hidden);  // output layer (the head)
  for (int64_t i = 0; i < s.clusters(); ++i)
    if (w.touched(i))
      f += 2.0 * static_cast<double>(w.clusters[static_cast<size_t>(i)].rows.size()) *
           static_cast<double>(s.tail_hidden(i) * (s.hidden + s.tail_size(i)));
  for (int64_t l = 0; l < s.layers; ++l) f += 2.0 * R * G * static_cast<double>(s.layer_input(l) + s.hidden);
  return 3.0 * f;
}

// Peak resident memory of this process (VmHWM), MiB.
double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

namespace {

// One (backend, precision, threads) case: its model state, carried from repeat to repeat, and its timings.
struct TrainCase {
  std::string backend, precision;
  int threads = 1;
  std::unique_ptr<Engine> engine;  // activate()d before each of its repeats
  Arena params, grads, hidden, average;
  RowGrad rows;  // sparse updates: the embedding's gradient
  std::unique_ptr<Optimizer> opt;
  std::unique_ptr<Workspace> ws;
  int64_t step = 0;
  double flops = 0;  // of the steps of the current repeat
  std::vector<double> secs, average_ms, gflop_per_step;
  std::vector<PhaseTimes> phases;
  double ceiling = 0;  // --ceiling: the GEMM ceiling of this thread count (FP32 only)
};

struct TrainBench {
  Config c;
  ModelShape shape;
  const Batcher* batcher = nullptr;
  int steps = 0;

  // n steps of the real train_step (and the running mean of a recipe with --average-from, timed apart).
  double run(TrainCase& k, int n, PhaseTimes* times) const {
    const DropoutConfig drop{
        static_cast<float>(c.dropout), c.dropout_mask == DropoutMask::Variational, c.seed, 0, 0, c.batch};
    std::vector<int32_t> x, y;
    double average_seconds = 0;
    for (int i = 0; i < n; ++i, ++k.step) {
      const int64_t len = batcher->window(k.step % batcher->windows(), 0, c.batch, x, y);
      train_step(*k.engine, shape, k.params, k.grads, k.hidden, *k.ws, *k.opt, drop, x.data(), y.data(), len, c.batch,
                 c.clip, c.lr, k.step, times);
      k.flops += step_flops(shape, k.ws->adaptive, len, c.batch);
      if (c.average_from > 0) {
        const auto t0 = std::chrono::steady_clock::now();
        running_mean(k.average.data(), k.params.data(), static_cast<int64_t>(k.params.size()), k.step + 1);
        average_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    }
    return average_seconds;
  }
  std::unique_ptr<TrainCase> make_case(const std::string& backend, const std::string& precision, int th,
                                       bool packed) const {
    auto k = std::make_unique<TrainCase>();
    k->backend = backend, k->precision = precision, k->threads = th;
    EngineOptions eo;
    eo.threads = th;
    eo.backend = parse_name<GemmBackend>(backend, "--backend-list");
    eo.precision = parse_name<Precision>(precision, "--precision-list");
    eo.packed_recurrent = packed;
    k->engine = std::make_unique<Engine>(eo);
    k->params = Arena(param_table(shape));
    k->grads = Arena(grad_table(shape, use_sparse_updates(c)));
    k->hidden = Arena(state_table(shape, c.batch));
    if (c.average_from > 0) k->average = Arena(param_table(shape));
    init_uniform(k->params, c.seed, c.init);
    k->opt = std::make_unique<Optimizer>(c, k->params.table());
    k->ws = std::make_unique<Workspace>(shape, c.bptt, c.batch, c.dropout > 0);
    if (k->opt->sparse()) k->ws->sparse_embedding = &k->rows;
    return k;
  }
  void timed_repeat(TrainCase& k) const {
    PhaseTimes p;
    k.flops = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const double average_seconds = run(k, steps, &p);
    k.gflop_per_step.push_back(k.flops / steps * 1e-9);
    k.secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps);
    k.phases.push_back(p);
    k.average_ms.push_back(average_seconds / steps * 1e3);
  }
};

std::vector<std::string> precision_list(const BenchOptions& o) {
  std::vector<std::string> out;
  std::stringstream in(o.precisions);
  for (std::string p; std::getline(in, p, ',');) {
    parse_name<Precision>(p, "--precision-list");
    out.push_back(p);
  }
  return out;
}

// One more repeat of case k with every gemm() call timed (costs a clock read per call): the per-signature table.
void profile_case(const TrainBench& b, TrainCase& k, double peak, BenchTable& prof) {
  const double s = median(k.secs);
  k.engine->profile(true);
  b.run(k, b.steps, nullptr);
  const auto entries = k.engine->profile_entries();
  k.engine->profile(false);
  const std::string th = std::to_string(k.threads);
  double total = 0;
  for (const auto& e : entries) total += e.seconds;
  for (const auto& e : entries) {
    const double gf = 2.0 * e.M * e.N * e.K * e.calls * 1e-9;
    prof.add({k.backend, k.precision, th, e.signature, fmt::format("{:.1f}", double(e.calls) / b.steps),
              fmt::format("{:.2f}", e.seconds / b.steps * 1e3), fmt::format("{:.1f}", 100 * e.seconds / (s * b.steps)),
              fmt::format("{:.1f}", gf / e.seconds), fmt::format("{:.1f}", 100 * gf / e.seconds / peak), e.variant});
  }
  prof.add({k.backend, k.precision, th, "all GEMMs", "", fmt::format("{:.2f}", total / b.steps * 1e3),
            fmt::format("{:.1f}", 100 * total / (s * b.steps)), "", "", ""});
}

void add_row(const TrainBench& b, const TrainCase& k, double peak, BenchTable& t) {
  const double s = median(k.secs), gflops = median(k.gflop_per_step) / s;
  auto ms = [&](double PhaseTimes::*f) {
    std::vector<double> v;
    for (const auto& p : k.phases) v.push_back(p.*f / b.steps * 1e3);
    return fmt::format("{:.2f}", median(v));
  };
  const bool ceil = k.ceiling > 0;
  t.add({k.backend,
         k.precision,
         std::to_string(k.threads),
         fmt::format("{:.0f}", b.c.bptt * b.c.batch / s),
         fmt::format("{:.1f}", gflops),
         fmt::format("{:.1f}", 100 * gflops / peak),
         ceil ? fmt::format("{:.1f}", 100 * k.ceiling / peak) : "n/a",
         ceil ? fmt::format("{:.1f}", 100 * gflops / k.ceiling) : "n/a",
         fmt::format("{:.2f}", s * 1e3),
         ms(&PhaseTimes::embed),
         ms(&PhaseTimes::recurrent_fwd),
         ms(&PhaseTimes::output_fwd),
         ms(&PhaseTimes::output_bwd),
         ms(&PhaseTimes::recurrent_bwd),
         ms(&PhaseTimes::embed_bwd),
         ms(&PhaseTimes::update),
         ms(&PhaseTimes::update_rows),
         b.c.average_from > 0 ? fmt::format("{:.2f}", median(k.average_ms)) : "n/a",
         fmt::format("{:.0f}", static_cast<double>(k.params.size()) * 4 / 1048576.0),
         fmt::format("{:.0f}", peak_rss_mib())});
}

}  // namespace

int bench_train(const BenchOptions& o) {
  TrainBench b;
  b.c = config_from_json_file(o.recipe);
  if (!o.data.empty()) b.c.data = o.data;
  b.c.validate();
  const Config& c = b.c;
  for (const auto& [name, value] : o.model_options)
    if (!value.empty()) set_option(*find_train_option(name), b.c, nlohmann::json(value));
  b.c.validate();
  // The corpus's ids, or (--vocab) enough Zipf(1) ids for every step the bench runs without repeating a window.
  std::vector<int32_t> synthetic;
  CorpusIds ids;
  int64_t V = o.train_vocab;
  if (V > 0) {
    synthetic = zipf_ids(V, (4 + int64_t{o.repeats + 2} * o.steps) * c.batch * c.bptt + 1, c.seed);
  } else {
    const Vocab vocab = run_vocabulary(c);
    ids = CorpusIds::load(corpus_paths(c.train_path(), "--train"), vocab, c.cache_path(), "encoding the text");
    V = vocab.size();
  }
  const Batcher batcher(
      o.train_vocab > 0 ? TokenSequence(std::span<const int32_t>(synthetic)) : TokenSequence(ids.pieces()), c.batch,
      c.bptt, o.train_vocab > 0 ? "synthetic ids" : c.train_path());
  b.shape = c.model_shape(V), b.batcher = &batcher, b.steps = o.steps;
  std::vector<std::unique_ptr<TrainCase>> cases;
  PeakTracker peak;
  for (const std::string& backend : backend_list(o))
    for (const std::string& precision : precision_list(o))
      for (int th : thread_list(o)) {
        if (precision == "bf16" && backend != "onednn") continue;
        if (parse_name<Precision>(precision, "--precision-list") == Precision::Bf16 && !bf16_supported()) {
          fmt::print(stderr, "bench train: this CPU has no AVX512_BF16: bf16 skipped\n");
          continue;
        }
        auto k = b.make_case(backend, precision, th, !o.no_packed);
        b.run(*k, 3, nullptr);  // warm-up: pages, library start-up, Auto's choice for every shape
        if (o.ceiling && precision == "fp32") k->ceiling = measure_gemm_ceiling(*k->engine, 3).gflops;
        cases.push_back(std::move(k));
      }
  for (int r = 0; r < o.repeats; ++r)  // alternating: repeat r of every case, then r+1
    for (auto& k : cases) {
      k->engine->activate();
      peak.measure(k->threads, k->precision == "bf16");
      b.timed_repeat(*k);
    }
  BenchTable t(
      "bench train " + o.recipe,
      {"backend",        "precision", "threads",        "tokens_per_s", "gflops",     "pct_peak",    "ceiling_pct_peak",
       "pct_of_ceiling", "step_ms",   "embed_ms",       "rec_fwd_ms",   "out_fwd_ms", "out_bwd_ms",  "rec_bwd_ms",
       "embed_bwd_ms",   "update_ms", "update_rows_ms", "average_ms",   "param_mib",  "peak_rss_mib"});
  BenchTable prof("bench train --gemm-profile " + o.recipe,
                  {"backend", "precision", "threads", "gemm", "calls_per_step", "ms_per_step", "pct_of_step", "gflops",
                   "pct_peak", "variant"});
  for (auto& k : cases) {
    k->engine->activate();
    const double pk = peak.measure(k->threads, k->precision == "bf16");
    if (o.gemm_profile) profile_case(b, *k, pk, prof);
  }
  for (auto& k : cases) add_row(b, *k, peak.best(k->threads, k->precision == "bf16"), t);
  t.print(o);
  if (o.gemm_profile) prof.print(o);
  return 0;
}

}  // namespace manylm
