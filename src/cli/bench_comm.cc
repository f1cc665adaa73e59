// bench_comm.cc — `mpirun -np N manylm bench comm`: the gradient reduction on this machine's ranks.
// (1) Reduction time against message size for every scheme: the time of one bucket (launch to the
//     last rank's completion, median), algorithm bandwidth (fp32 bytes / time) and bus bandwidth as
//     nccl-tests defines it for all-reduce (algbw · 2(N−1)/N), bytes each rank puts on the wire.
// (2) A recipe's real training step (train_step on this rank's lanes of the real corpus) three ways:
//     compute only; reduction launched bucket by bucket during backward (overlapped); reduction
//     launched after backward. Exposed communication = overlapped − compute; hidden share =
//     1 − exposed / (after-backward − compute). With sparse updates the embedding's rows travel apart from
//     the dense block (reduce_rows, after it): their bytes and rows per step have their own columns.
#include <fmt/format.h>
#include <mpi.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <tuple>

#include "cli/bench.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "mpi/comm.h"
#include "mpi/reducer.h"
#include "train/options.h"
#include "train/trainer.h"

namespace manylm {

namespace {

double seconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<Compress> scheme_list(const std::string& s) {
  std::vector<Compress> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(parse_compress(item));
  if (out.empty()) fail("--schemes: empty list");
  return out;
}

// A gradient-like field: mostly small values, a few large, some exact zeros (embedding rows not seen).
void fill(std::vector<float>& v, int rank) {
  CounterRng r{static_cast<uint64_t>(77 + rank), 5};
  for (size_t i = 0; i < v.size(); ++i) {
    const float u = r.uniform(i), w = r.uniform(i + v.size());
    v[i] = (i / 4096) % 3 == 2 ? 0.0f : (u - 0.5f) * 2e-3f * (w < 0.01f ? 30.0f : 1.0f);
  }
}

void bench_sizes(const BenchOptions& o, const Comm& comm, const std::vector<Compress>& schemes) {
  const int N = comm.size();
  BenchTable t(
      fmt::format("bench comm: reduction of one bucket, {} ranks", N),
      {"scheme", "ranks", "fp32_bytes", "time_us", "algbw_GBps", "busbw_GBps", "wire_bytes_per_rank", "wire_cut"});
  for (Compress scheme : schemes)
    for (int64_t n :
         {int64_t{1} << 10, int64_t{1} << 14, int64_t{1} << 18, int64_t{1} << 20, int64_t{1} << 22, int64_t{1} << 24}) {
      std::vector<float> src(static_cast<size_t>(n)), g(static_cast<size_t>(n));
      fill(src, comm.rank());
      ReduceOptions ro;
      ro.codec = scheme;
      ro.bucket_floats = n;
      ro.progress_thread = false;  // the caller drives: this times the collective itself
      GradReducer red(comm, g, ro);
      const int iters = n >= (int64_t{1} << 22) ? 3 : 10;
      std::vector<double> times;
      for (int r = 0; r < o.repeats + 1; ++r) {
        double sum = 0;
        for (int i = 0; i < iters; ++i) {
          std::memcpy(g.data(), src.data(), g.size() * sizeof(float));
          comm.barrier();
          const double t0 = seconds();
          red.finish();
          sum += comm.max(seconds() - t0);
        }
        if (r > 0) times.push_back(sum / iters);  // the first repeat warms up
        if (r == 0) red.reset_stats();
      }
      const double s = median(times), bytes = 4.0 * static_cast<double>(n);
      double wire[1] = {red.stats().wire_bytes / static_cast<double>(red.stats().steps)};
      comm.sum(wire);
      wire[0] /= N;
      const double algbw = bytes / s / 1e9;
      t.add({compress_name(scheme), std::to_string(N), fmt::format("{:.0f}", bytes), fmt::format("{:.1f}", s * 1e6),
             fmt::format("{:.3f}", algbw), fmt::format("{:.3f}", algbw * 2.0 * (N - 1) / N),
             fmt::format("{:.0f}", wire[0]), fmt::format("{:.1f}", 2.0 * (N - 1) / N * bytes / wire[0])});
    }
  if (comm.root()) t.print(o);
}

// The recipe's step as train runs it, on this rank's lanes: its model, batcher and lanes.
struct RecipeStep {
  Config c;
  ModelShape shape;
  const Batcher* batcher = nullptr;
  int64_t lane0 = 0, lane1 = 0;
};

// One scheme's figures: seconds per step (slowest rank, medians over the repeats) computed only, reduced after
// backward and overlapped; per step of the mean rank, the dense block's bytes (fp32 and on the wire) and, with
// sparse updates, the embedding rows' bytes and the rows of their union.
struct SchemeStep {
  double compute = 0, after = 0, overlapped = 0;
  double raw_bytes = 0, wire_bytes = 0, row_bytes = 0, rows = 0;
};

SchemeStep time_scheme(const Engine& e, const BenchOptions& o, const Comm& comm, const RecipeStep& r, Compress scheme) {
  const Config& c = r.c;
  const int64_t B = r.lane1 - r.lane0;
  Arena params(param_table(r.shape)), grads(grad_table(r.shape, use_sparse_updates(c))),
      hidden(state_table(r.shape, B));
  init_uniform(params, c.seed, c.init);
  Optimizer opt(c, params.table());
  Workspace ws(r.shape, c.bptt, B, c.dropout > 0);
  RowGrad rows;  // sparse updates: the embedding's gradient, exchanged by reduce_rows as train's step does
  if (opt.sparse()) ws.sparse_embedding = &rows;
  ws.objective_lanes = c.batch;
  ReduceOptions ro;
  ro.codec = scheme;
  ro.bucket_floats = static_cast<int64_t>(c.bucket_mb * (1 << 20) / sizeof(float));
  ro.density = c.threshold_density;
  ro.tau = static_cast<float>(c.threshold_tau);
  GradReducer red(comm, grads.flat(), ro);
  const DropoutConfig drop{
      static_cast<float>(c.dropout), c.dropout_mask == DropoutMask::Variational, c.seed, 0, r.lane0, c.batch};
  std::vector<int32_t> x, y;
  int64_t step = 0;
  // mode 0: compute only; 1: reduce after backward; 2: overlapped. Seconds per step, slowest rank.
  auto run = [&](int mode) {
    ws.grads_ready = mode == 2 ? std::function<void(size_t)>([&red](size_t from) { red.ready(from); }) : nullptr;
    comm.barrier();
    const double t0 = seconds();
    for (int i = 0; i < o.steps; ++i, ++step) {
      const int64_t len = r.batcher->window(step % r.batcher->windows(), r.lane0, r.lane1, x, y);
      train_step(e, r.shape, params, grads, hidden, ws, opt, drop, x.data(), y.data(), len, B, c.clip, c.lr, step,
                 nullptr, mode ? &red : nullptr);
    }
    return comm.max((seconds() - t0) / o.steps);
  };
  for (int m = 0; m < 3; ++m) run(m);  // warm-up
  red.reset_stats();
  std::vector<double> s[3];
  for (int rep = 0; rep < o.repeats; ++rep)
    for (int m = 0; m < 3; ++m) s[m].push_back(run(m));
  const ReduceStats& rs = red.stats();
  double bytes[4] = {rs.raw_bytes, rs.wire_bytes, rs.row_bytes, rs.row_count};
  comm.sum(bytes);
  const double per = static_cast<double>(comm.size()) * static_cast<double>(rs.steps);  // rank-steps
  return {median(s[0]), median(s[1]), median(s[2]), bytes[0] / per, bytes[1] / per, bytes[2] / per, bytes[3] / per};
}

void bench_recipe(const Engine& e, const BenchOptions& o, const Comm& comm, const std::vector<Compress>& schemes) {
  RecipeStep r;
  r.c = config_from_json_file(o.recipe);
  if (!o.data.empty()) r.c.data = o.data;
  r.c.validate();
  const Config& c = r.c;
  const int N = comm.size();
  if (c.batch < N) fail("{}: --batch {} cannot be split over {} ranks", o.recipe, c.batch, N);
  std::string vocab_json;
  if (comm.root()) vocab_json = run_vocabulary(c).to_json();
  const Vocab vocab = Vocab::from_json(comm.broadcast(vocab_json), "vocabulary from rank 0");
  const std::string cache = c.cache_dir.empty() ? default_cache_dir() : c.cache_dir;
  if (!comm.root()) comm.barrier();
  const CorpusIds ids = CorpusIds::load(corpus_paths(c.train_path(), "--train"), vocab, cache);
  if (comm.root()) comm.barrier();
  const Batcher batcher(TokenSequence(ids.pieces()), c.batch, c.bptt, c.train_path());
  r.shape = c.model_shape(vocab.size());
  r.batcher = &batcher;
  std::tie(r.lane0, r.lane1) = static_range(c.batch, comm.rank(), N);
  // Sparse updates (the recipe's --sparse-updates, auto: SGD): the dense block's traffic (wire_MB_per_step,
  // wire_cut) and the embedding rows' (row_MB_per_step, rows_per_step) apart.
  const bool sparse = use_sparse_updates(c);
  std::vector<std::string> columns = {"scheme",     "compute_ms", "after_bwd_ms",     "overlapped_ms", "comm_ms",
                                      "exposed_ms", "hidden_pct", "wire_MB_per_step", "wire_cut"};
  if (sparse) columns.insert(columns.end(), {"row_MB_per_step", "rows_per_step"});
  columns.push_back("tokens_per_s");
  BenchTable t(fmt::format("bench comm: {} training step, {} ranks x {} threads", o.recipe, N, e.threads()), columns);
  for (Compress scheme : schemes) {
    const SchemeStep m = time_scheme(e, o, comm, r, scheme);
    const double comm_ms = (m.after - m.compute) * 1e3, exposed = (m.overlapped - m.compute) * 1e3;
    std::vector<std::string> row = {compress_name(scheme),
                                    fmt::format("{:.1f}", m.compute * 1e3),
                                    fmt::format("{:.1f}", m.after * 1e3),
                                    fmt::format("{:.1f}", m.overlapped * 1e3),
                                    fmt::format("{:.1f}", comm_ms),
                                    fmt::format("{:.1f}", exposed),
                                    fmt::format("{:.0f}", comm_ms > 0 ? 100.0 * (1.0 - exposed / comm_ms) : 0.0),
                                    fmt::format("{:.2f}", m.wire_bytes / 1e6),
                                    fmt::format("{:.1f}", 2.0 * (N - 1) / N * m.raw_bytes / m.wire_bytes)};
    if (sparse) row.insert(row.end(), {fmt::format("{:.4f}", m.row_bytes / 1e6), fmt::format("{:.0f}", m.rows)});
    row.push_back(fmt::format("{:.0f}", c.bptt * c.batch / m.overlapped));
    t.add(std::move(row));
  }
  if (comm.root()) t.print(o);
}

}  // namespace

int bench_comm(const BenchOptions& o) {
  const Comm comm = Comm::world();
  if (!comm.distributed())
    fail(
        "bench comm: needs at least 2 MPI ranks: run it as mpirun -np 2 manylm bench comm (as root: add "
        "--allow-run-as-root)");
  EngineOptions eo;
  eo.threads = o.threads.empty() ? 1 : parse_int_list(o.threads, "threads-list")[0];
  const Engine engine(eo);
  const std::vector<Compress> schemes = scheme_list(o.schemes);
  if (o.part != "step") bench_sizes(o, comm, schemes);
  if (o.part != "sizes") bench_recipe(engine, o, comm, schemes);
  return 0;
}

}  // namespace manylm
