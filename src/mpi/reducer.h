// reducer.h — the data-parallel gradient reduction: the flat gradient block is cut into buckets from
// its end (backward finishes the decoder first and the embedding last); the trainer reports, as
// backward proceeds, from which offset on the gradients are final, and every bucket inside that range
// is launched at once as a non-blocking collective; a progress thread keeps them moving while backward
// runs (Open MPI 4.1 has no asynchronous progress of its own); finish() waits for the rest. Afterwards
// every rank holds the same sum over ranks.
//
// Paths per bucket:
//   none:                  MPI_Iallreduce into a separate buffer (MPI's algorithm and summation order;
//                          in place, Open MPI 4.1's libnbc would always take a binomial tree);
//   none + deterministic,  compressed reduce-scatter: each rank encodes chunk j of the bucket for its
//   fp16, int8, dyn8:      owner j (MPI_Ialltoallv); the owner decodes and sums in fp32 in rank order,
//                          re-encodes its chunk, and MPI_Iallgatherv spreads it; every rank decodes the
//                          same bytes, so the ranks stay identical;
//   threshold:             each rank's sparse message (index + sign, τ) goes to all by MPI_Iallgatherv;
//                          every rank adds the ±τ of all messages in rank order.
// Lossy codecs keep two residuals (error feedback): the rank's own (what it has not yet sent) and, for
// the dense ones, the owner's (what re-encoding the sum lost). A row-sparse gradient (the embedding's) is
// exchanged as (row ids, values) by reduce_rows. Not the codecs themselves (compress.h).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/row_grad.h"
#include "mpi/comm.h"
#include "mpi/compress.h"
#include "mpi/watchdog.h"

namespace manylm {

struct ReduceOptions {
  Compress codec = Compress::None;
  int64_t bucket_floats = int64_t{1} << 20;  // 4 MiB of fp32 per bucket
  float tau = 0;                             // threshold: fixed τ; ≤ 0: adaptive
  double density = 0.01;                     // threshold, adaptive τ: fraction of elements sent
  bool deterministic = false;                // summation in rank order, whatever MPI's algorithm
  bool progress_thread = true;               // a thread that drives MPI while backward computes
};

struct ReduceStats {
  int64_t steps = 0;
  double raw_bytes = 0;      // 4 bytes per gradient value, per step, summed over steps
  double payload_bytes = 0;  // what this rank's encoder produced (its contribution), summed
  double wire_bytes = 0;     // bytes this rank sends, by the algorithm's count (ring model for MPI's
                             // all-reduce 2(N−1)/N·S and all-gather (N−1)/N·S, exact for all-to-all)
  double row_bytes = 0;      // sparse rows (reduce_rows): ids and values this rank sends, by the same ring model
  double row_count = 0;      // rows of the union exchanged, summed over steps
  double comm_seconds = 0;   // first launch to last completion, summed over steps
  double wait_seconds = 0;   // time finish() blocked the trainer, summed over steps
};

class GradReducer {
 public:
  GradReducer(Comm comm, std::span<float> grads, const ReduceOptions& o);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // grads[from, end) are final for this step: launch every bucket that lies inside.
  void ready(size_t from);
  // Launches what is left and waits: grads then hold the sum over ranks, identical on every rank.
  void finish();
  // A row-sparse gradient (the embedding's, kept outside the dense block) summed over ranks: the union of the
  // ranks' row ids (all-gather), then one all-reduce of those rows in fp32 (with `deterministic`: every rank's
  // rows gathered and added in rank order) — never the whole table, no compression, no residual. `touched`
  // (per tail cluster: reached this step) becomes the OR over ranks. Call after finish(), on every rank.
  void reduce_rows(RowGrad& g, std::span<uint8_t> touched);
  const ReduceStats& stats() const { return stats_; }
  // No codec loses anything to a residual (what a step did not touch is zero after the sum).
  bool lossless() const { return o_.codec == Compress::None; }
  void reset_stats() { stats_ = {}; }
  // finish() and reduce_rows() wait armed under this watchdog (null: none).
  void watch(Watchdog* w) { watchdog_ = w; }
  // This rank's error-feedback residuals (empty for lossless paths); for tests and checks.
  std::span<const float> residual() const { return residual_; }
  std::span<const float> owner_residual() const { return owner_residual_; }
  // The error-feedback state a checkpoint must hold for a bit-identical resume, by name (empty when
  // the path is lossless). Writable: a resume fills it.
  std::vector<std::pair<std::string, std::span<float>>> feedback_state();

 private:
  struct Bucket;
  struct Channels;  // two duplicates of MPI_COMM_WORLD, one per stage (see reducer.cc)
  void launch(Bucket& b);
  bool advance(Bucket& b, bool may_start_second);  // true when the bucket completed a stage
  void drive(size_t upto);  // launches buckets < upto and tests active ones until all < upto are done
  bool poll(size_t upto);   // one round: launch, test; returns whether anything moved
  void worker();

  Comm comm_;
  std::span<float> grads_;
  ReduceOptions o_;
  std::unique_ptr<Channels> ch_;
  std::vector<std::unique_ptr<Bucket>> buckets_;  // [0] is the last range of the block
  std::vector<float> residual_, owner_residual_;
  ReduceStats stats_;
  Watchdog* watchdog_ = nullptr;
  double step_start_ = 0;
  bool step_open_ = false;
  size_t launched_ = 0, completed_ = 0;  // buckets; touched by whoever drives MPI

  // Progress thread: the trainer raises `released_`; the thread drives buckets < released_ and
  // raises `done_`. Only one of them calls MPI at any time (MPI_THREAD_SERIALIZED).
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t released_ = 0, done_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;  // a codec's UserError (non-finite gradient) in the thread, rethrown by finish()
};

}  // namespace manylm
