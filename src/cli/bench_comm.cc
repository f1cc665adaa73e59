// bench_comm.cc — `mpirun -np N manylm bench comm`: the gradient reduction on this machine's ranks.
// (1) Reduction time against message size for every scheme: the time of one bucket (launch to the
//     last rank's completion, median), algorithm bandwidth (fp32 bytes / time) and bus bandwidth as
//     nccl-tests defines it for all-reduce (algbw · 2(N−1)/N), bytes each rank puts on the wire.
// (2) A recipe's real training step (train_step on this rank's lanes of the real corpus) three ways:
//     compute only; reduction launched bucket by bucket during backward (overlapped); reduction
//     launched after backward. Exposed communication = overlapped − compute; hidden share =
//     1 − exposed / (after-backward − compute).
#include <fmt/format.h>
#include <mpi.h>

#include <chrono>
#include <cstring>
#include <sstream>

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

void bench_recipe(const Engine& e, const BenchOptions& o, const Comm& comm, const std::vector<Compress>& schemes) {
  Config c = config_from_json_file(o.recipe);
  if (!o.data.empty()) c.data = o.data;
  c.validate();
  const int N = comm.size();
  if (c.batch < N) fail("{}: --batch {} cannot be split over {} ranks", o.recipe, c.batch, N);
  std::string vocab_json;
  if (comm.root()) vocab_json = build_vocab(c.train_path(), c.tokens, c.vocab_size, c.min_count).to_json();
  const Vocab vocab = Vocab::from_json(comm.broadcast(vocab_json), "vocabulary from rank 0");
  const std::string cache = c.cache_dir.empty() ? default_cache_dir() : c.cache_dir;
  if (!comm.root()) comm.barrier();
  const TokenIds ids = TokenIds::load(c.train_path(), vocab, cache);
  if (comm.root()) comm.barrier();
  const Batcher batcher(ids.ids(), c.batch, c.bptt, c.train_path());
  const ModelShape shape = c.model_shape(vocab.size());
  const auto [lane0, lane1] = static_range(c.batch, comm.rank(), N);
  const int64_t B = lane1 - lane0;
  BenchTable t(fmt::format("bench comm: {} training step, {} ranks x {} threads", o.recipe, N, e.threads()),
               {"scheme", "compute_ms", "after_bwd_ms", "overlapped_ms", "comm_ms", "exposed_ms", "hidden_pct",
                "wire_MB_per_step", "wire_cut", "tokens_per_s"});
  for (Compress scheme : schemes) {
    Arena params(param_table(shape)), grads(param_table(shape)), hidden(state_table(shape, B));
    init_uniform(params, c.seed, c.init);
    Optimizer opt(c, params.table());
    Workspace ws(shape, c.bptt, B, c.dropout > 0);
    ws.objective_lanes = c.batch;
    ReduceOptions ro;
    ro.codec = scheme;
    ro.bucket_floats = static_cast<int64_t>(c.bucket_mb * (1 << 20) / sizeof(float));
    ro.density = c.threshold_density;
    ro.tau = static_cast<float>(c.threshold_tau);
    GradReducer red(comm, grads.flat(), ro);
    const DropoutConfig drop{
        static_cast<float>(c.dropout), c.dropout_mask == DropoutMask::Variational, c.seed, 0, lane0, c.batch};
    std::vector<int32_t> x, y;
    int64_t step = 0;
    // mode 0: compute only; 1: reduce after backward; 2: overlapped. Seconds per step, slowest rank.
    auto run = [&](int mode) {
      ws.grads_ready = mode == 2 ? std::function<void(size_t)>([&red](size_t from) { red.ready(from); }) : nullptr;
      comm.barrier();
      const double t0 = seconds();
      for (int i = 0; i < o.steps; ++i, ++step) {
        const int64_t len = batcher.window(step % batcher.windows(), lane0, lane1, x, y);
        train_step(e, shape, params, grads, hidden, ws, opt, drop, x.data(), y.data(), len, B, c.clip, c.lr, step,
                   nullptr, mode ? &red : nullptr);
      }
      return comm.max((seconds() - t0) / o.steps);
    };
    for (int m = 0; m < 3; ++m) run(m);  // warm-up
    red.reset_stats();
    std::vector<double> s[3];
    for (int r = 0; r < o.repeats; ++r)
      for (int m = 0; m < 3; ++m) s[m].push_back(run(m));
    const double comp = median(s[0]), after = median(s[1]), over = median(s[2]);
    double wire[2] = {red.stats().wire_bytes, red.stats().raw_bytes};
    comm.sum(wire);
    const double per_step = wire[0] / N / static_cast<double>(red.stats().steps);
    const double raw = wire[1] / N / static_cast<double>(red.stats().steps);
    const double comm_ms = (after - comp) * 1e3, exposed = (over - comp) * 1e3;
    t.add({compress_name(scheme), fmt::format("{:.1f}", comp * 1e3), fmt::format("{:.1f}", after * 1e3),
           fmt::format("{:.1f}", over * 1e3), fmt::format("{:.1f}", comm_ms), fmt::format("{:.1f}", exposed),
           fmt::format("{:.0f}", comm_ms > 0 ? 100.0 * (1.0 - exposed / comm_ms) : 0.0),
           fmt::format("{:.2f}", per_step / 1e6), fmt::format("{:.1f}", 2.0 * (N - 1) / N * raw / per_step),
           fmt::format("{:.0f}", c.bptt * c.batch / over)});
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
