// bench_gemm.cc — `manylm bench gemm`: the seed's experiment reproduced on this machine.
//  (a) a chain of one GEMM shape (128×1200×1200);
//  (b) the chain of GEMMs of one training step of a 2-layer Elman RNN and LSTM (forward, backward-data,
//      backward-weights, output layer over the vocabulary), exactly the calls the model makes;
//  (c) the per-step recurrent products against the one time-batched input projection;
//  (d) the output layer over the vocabulary: the full softmax's products, and with --cutoffs an adaptive
//      softmax's head and gathered tail blocks (rows as Zipf-distributed text routes them).
// GFLOP/s and % of the FP32 peak measured in the same run (the best of its measurements between the rows),
// for each thread count and backend. Backend `manylm` is the trainer's engine: Auto for the seam's products,
// and each layer's per-step recurrent products through the packed kernel in one parallel region (pack once,
// a barrier per step).
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "cli/bench.h"
#include "core/engine.h"
#include "core/gemm.h"
#include "core/machine.h"
#include "core/packed_gemm.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "model/adaptive.h"
#include "model/shape.h"

namespace manylm {

namespace {

struct Call {
  Trans ta, tb;
  int64_t M, N, K;
  bool recurrent = false;  // a per-step product of the time loop (same weight for the whole run of them)
};

double flops(const std::vector<Call>& chain) {
  double f = 0;
  for (const auto& c : chain) f += 2.0 * c.M * c.N * c.K;
  return f;
}

// The GEMMs of one training step (model.cc, elman.cc, lstm.cc), in order. G = gates·H.
std::vector<Call> step_chain(int64_t gates, int64_t L, int64_t T, int64_t B, int64_t H, int64_t V) {
  const int64_t G = gates * H;
  std::vector<Call> c;
  for (int64_t l = 0; l < L; ++l) {
    c.push_back({Trans::N, Trans::T, T * B, G, H});                                    // input projection, all steps
    for (int64_t t = 0; t < T; ++t) c.push_back({Trans::N, Trans::T, B, G, H, true});  // recurrent, per step
  }
  c.push_back({Trans::N, Trans::T, T * B, V, H});  // output layer
  c.push_back({Trans::T, Trans::N, V, H, T * B});  // d decoder.weight
  c.push_back({Trans::N, Trans::N, T * B, H, V});  // d top activations
  for (int64_t l = L - 1; l >= 0; --l) {
    for (int64_t t = T - 1; t > 0; --t) c.push_back({Trans::N, Trans::N, B, H, G, true});  // recurrent backward
    c.push_back({Trans::T, Trans::N, G, H, T * B});                                        // d W_hh
    c.push_back({Trans::T, Trans::N, G, H, T * B});                                        // d W_ih
    c.push_back({Trans::N, Trans::N, T * B, H, G});                                        // d inputs
  }
  return c;
}

// The output layer's products over R = T·B rows: the full softmax's three (forward, d weight, d input), or with
// cutoffs an adaptive softmax's (adaptive.cc): the head's three, and per tail cluster its six on the rows that
// Zipf(1)-distributed targets route to it (R·(H_end − H_begin)/H_V, H_n harmonic numbers), padded as the model
// pads its blocks.
std::vector<Call> output_chain(int64_t R, int64_t H, int64_t V, const std::vector<int64_t>& cutoffs) {
  if (cutoffs.empty())
    return {{Trans::N, Trans::T, R, V, H}, {Trans::T, Trans::N, V, H, R}, {Trans::N, Trans::N, R, H, V}};
  ModelShape s;
  s.vocab = V, s.hidden = H, s.output = Output::Adaptive, s.cutoffs = cutoffs;
  check_adaptive(s);
  const int64_t Hs = s.head_size();
  std::vector<Call> c = {
      {Trans::N, Trans::T, R, Hs, H}, {Trans::T, Trans::N, Hs, H, R}, {Trans::N, Trans::N, R, H, Hs}};
  auto harmonic = [](int64_t n) {
    return std::log(static_cast<double>(n)) + 0.5772156649 + 0.5 / static_cast<double>(n);
  };
  for (int64_t i = 0; i < s.clusters(); ++i) {
    const double share = (harmonic(s.tail_end(i)) - harmonic(s.tail_begin(i))) / harmonic(V);
    const int64_t r = adaptive_block_rows(std::max<int64_t>(1, std::llround(share * static_cast<double>(R))));
    const int64_t h = s.tail_hidden(i), n = s.tail_size(i);
    c.insert(c.end(), {{Trans::N, Trans::T, r, h, H},
                       {Trans::N, Trans::T, r, n, h},
                       {Trans::T, Trans::N, n, h, r},
                       {Trans::N, Trans::N, r, h, n},
                       {Trans::T, Trans::N, h, H, r},
                       {Trans::N, Trans::N, r, H, h}});
  }
  return c;
}

// Buffers big enough for every call of a chain; A, B, C reused (their contents do not matter for time).
struct Buffers {
  std::vector<float> a, b, c;
  explicit Buffers(const std::vector<Call>& chain) {
    size_t sa = 0, sb = 0, sc = 0;
    for (const auto& k : chain) {
      sa = std::max<size_t>(sa, k.M * k.K);
      sb = std::max<size_t>(sb, k.K * k.N);
      sc = std::max<size_t>(sc, k.M * k.N);
    }
    CounterRng r{1, 1};
    a.resize(sa), b.resize(sb), c.resize(sc);
    for (size_t i = 0; i < sa; ++i) a[i] = r.uniform(i) - 0.5f;
    for (size_t i = 0; i < sb; ++i) b[i] = r.uniform(i + sa) - 0.5f;
  }
};

double run_chain(const Engine& e, const std::vector<Call>& chain, Buffers& buf, PackedB* packed) {
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < chain.size();) {
    const Call& k = chain[i];
    const int64_t lda = k.ta == Trans::N ? k.K : k.M, ldb = k.tb == Trans::N ? k.N : k.K;
    if (!packed || !k.recurrent || k.ta != Trans::N) {
      gemm(e, k.ta, k.tb, k.M, k.N, k.K, 1.0f, buf.a.data(), lda, buf.b.data(), ldb, 0.0f, buf.c.data(), k.N);
      ++i;
      continue;
    }
    size_t run = i;  // the layer's run of per-step products, as lstm.cc does it
    while (run < chain.size() && chain[run].recurrent) ++run;
    packed->pack(k.tb, buf.b.data(), ldb, k.K, k.N);
#pragma omp parallel
    {
      const auto [p0, p1] = static_range(packed->panels(), omp_get_thread_num(), omp_get_num_threads());
      for (size_t t = i; t < run; ++t) {
        gemm_packed(k.M, buf.a.data(), lda, *packed, p0, p1, 0.0f, buf.c.data(), k.N);
#pragma omp barrier
      }
    }
    i = run;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Checks the backend against the reference on a small shape of each transpose pair before timing.
void check_backend(const Engine& e) {
  CounterRng r{3, 3};
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      const int64_t M = 37, N = 29, K = 41;
      std::vector<float> A(M * K), B(K * N), C(M * N), R(M * N);
      for (size_t i = 0; i < A.size(); ++i) A[i] = r.uniform(i) - 0.5f;
      for (size_t i = 0; i < B.size(); ++i) B[i] = r.uniform(i + 5000) - 0.5f;
      const int64_t lda = ta == Trans::N ? K : M, ldb = tb == Trans::N ? N : K;
      gemm(e, ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), N);
      gemm_reference<float>(ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, R.data(), N);
      for (size_t i = 0; i < C.size(); ++i)
        if (std::abs(C[i] - R[i]) > 1e-4f) throw std::runtime_error("bench gemm: backend disagrees with the reference");
    }
}

}  // namespace

int bench_gemm(const BenchOptions& o) {
  const auto batches = parse_int_list(o.batches, "batch-list"), hiddens = parse_int_list(o.hiddens, "hidden-list");
  std::vector<int64_t> cutoffs;
  if (!o.gemm_cutoffs.empty())
    for (int c : parse_int_list(o.gemm_cutoffs, "cutoffs")) cutoffs.push_back(c);
  BenchTable t("bench gemm", {"backend", "chain", "cell", "B", "H", "threads", "gflop", "ms", "gflops", "pct_peak"});
  // The peak of each thread count is measured again after every chain, and every row is divided by the best
  // of all those measurements (PeakTracker): a neighbour's burst can only lower a measured peak.
  PeakTracker peak;
  struct Row {
    std::vector<std::string> cells;
    double gflops;
    int threads;
  };
  std::vector<Row> rows;
  for (const std::string& backend : backend_list(o))
    for (int th : thread_list(o)) {
      const bool manylm = backend == "manylm";
      EngineOptions eo;
      eo.threads = th;
      eo.backend = manylm ? GemmBackend::Auto : parse_name<GemmBackend>(backend, "--backend-list");
      const Engine engine(eo);
      check_backend(engine);
      PackedB packed;
      peak.measure(th, false);
      auto measure = [&](const std::string& chain_name, const std::string& cell, int64_t B, int64_t H,
                         const std::vector<Call>& chain) {
        Buffers buf(chain);
        run_chain(engine, chain, buf, manylm ? &packed : nullptr);  // warm-up: pages, library start-up, Auto's choice
        std::vector<double> s;
        for (int r = 0; r < o.repeats; ++r) s.push_back(run_chain(engine, chain, buf, manylm ? &packed : nullptr));
        const double sec = median(s), gf = flops(chain) * 1e-9;
        rows.push_back({{backend, chain_name, cell, std::to_string(B), std::to_string(H), std::to_string(th),
                         fmt::format("{:.2f}", gf), fmt::format("{:.2f}", sec * 1e3), fmt::format("{:.1f}", gf / sec)},
                        gf / sec,
                        th});
        peak.measure(th, false);
      };
      measure("one-shape", "-", 128, 1200, std::vector<Call>(20, Call{Trans::N, Trans::N, 128, 1200, 1200}));
      for (int64_t gates : {1, 4})
        for (int B : batches)
          for (int H : hiddens) {
            const std::string cell = gates == 1 ? "elman" : "lstm";
            measure("train-step", cell, B, H, step_chain(gates, 2, o.bptt, B, H, o.vocab));
            measure("recurrent-per-step", cell, B, H,
                    std::vector<Call>(o.bptt, Call{Trans::N, Trans::T, B, gates * H, H, true}));
            measure("input-time-batched", cell, B, H, {Call{Trans::N, Trans::T, o.bptt * int64_t{B}, gates * H, H}});
          }
      for (int B : batches)  // the output layer: the same for every cell
        for (int H : hiddens) {
          measure("output-full", "-", B, H, output_chain(o.bptt * int64_t{B}, H, o.vocab, {}));
          if (!cutoffs.empty())
            measure("output-adaptive", "-", B, H, output_chain(o.bptt * int64_t{B}, H, o.vocab, cutoffs));
        }
    }
  for (Row& r : rows) {
    r.cells.push_back(fmt::format("{:.1f}", 100 * r.gflops / peak.best(r.threads, false)));
    t.add(std::move(r.cells));
  }
  t.print(o);
  return 0;
}

}  // namespace manylm
