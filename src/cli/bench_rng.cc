// bench_rng.cc — `manylm bench rng`: dropout mask generation and application (Philox4x32-10, fused into
// the kernel that applies the mask) in ns per element, on the seed's 128×1200 matrix and on the shapes
// of the PTB recipes; and the share of a ptb-medium-shaped LSTM training step (2×650, B 20, T 35,
// dropout 0.5, synthetic tokens) spent on masks.
#include <fmt/format.h>

#include <chrono>

#include "cli/bench.h"
#include "core/dropout.h"
#include "core/engine.h"
#include "core/parallel.h"
#include "train/trainer.h"

namespace manylm {

namespace {
double time_masks(int64_t T, int64_t B, int64_t D, int repeats) {
  std::vector<float> x(static_cast<size_t>(T * B * D), 1.0f);
  std::vector<uint8_t> m(x.size());
  std::vector<double> s;
  for (int r = 0; r < repeats + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    dropout_forward({1, static_cast<uint64_t>(r), 1, 0.5f, false}, T, B, D, 0, B, x.data(), m.data());
    if (r > 0) s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(s);
}
}  // namespace

int bench_rng(const BenchOptions& o) {
  BenchTable t("bench rng",
               {"threads", "shape", "elements", "ns_per_element", "mask_ms_per_step", "step_ms", "pct_of_step"});
  for (int th : thread_list(o)) {
    EngineOptions eo;
    eo.threads = th;
    const Engine engine(eo);
    // A ptb-medium-shaped step, for the share.
    ModelShape s;
    s.cell = Cell::Lstm;
    s.vocab = 10000;
    s.embed = s.hidden = 650;
    s.layers = 2;
    const int64_t T = 35, B = 20;
    Config c;  // SGD: sparse updates, the embedding's gradient as rows (as train's step)
    Arena params(param_table(s)), grads(grad_table(s, use_sparse_updates(c))), hidden(state_table(s, B));
    init_uniform(params, 1, 0.05);
    Optimizer opt(c, params.table());
    Workspace ws(s, T, B, true);
    RowGrad rows;
    if (opt.sparse()) ws.sparse_embedding = &rows;
    std::vector<int32_t> x(T * B), y(T * B);
    for (int64_t i = 0; i < T * B; ++i)
      x[i] = static_cast<int32_t>((i * 7919) % 10000), y[i] = static_cast<int32_t>((i * 104729) % 10000);
    std::vector<double> steps;
    for (int r = 0; r < o.repeats + 1; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      train_step(engine, s, params, grads, hidden, ws, opt, {0.5f, false, 1, 0, 0, B}, x.data(), y.data(), T, B, 5.0,
                 1.0, r);
      if (r > 0) steps.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double step = median(steps);
    const int64_t per_step = T * B * (s.embed + s.layers * s.hidden);  // mask elements of one step (3 sites)
    for (auto [name, rows, D] : {std::tuple<const char*, int64_t, int64_t>{"seed 128x1200", 128, 1200},
                                 {"ptb-small 400x200", 400, 200},
                                 {"ptb-medium 700x650", 700, 650},
                                 {"ptb-large 700x1500", 700, 1500}}) {
      const double sec = time_masks(rows, 1, D, o.repeats);
      const double ns = sec / (rows * D) * 1e9;
      const bool medium = std::string(name).rfind("ptb-medium", 0) == 0;
      t.add({std::to_string(th), name, std::to_string(rows * D), fmt::format("{:.3f}", ns),
             medium ? fmt::format("{:.3f}", ns * per_step * 1e-6) : "", medium ? fmt::format("{:.1f}", step * 1e3) : "",
             medium ? fmt::format("{:.2f}", 100 * ns * per_step * 1e-9 / step) : ""});
    }
  }
  t.print(o);
  return 0;
}

}  // namespace manylm
