// trainer.h — a training run from a Config to a result: data → model → the step loop
// (forward, backward, clip, update), validation each epoch, schedule, checkpoints, resume, signals.
// Not argument parsing or output formatting (cli/).
#pragma once
#include <cstdint>
#include <string>

#include "model/model.h"
#include "mpi/comm.h"
#include "train/config.h"
#include "train/optimizer.h"

namespace manylm {

class GradReducer;

// What a run reports (train --json prints its fields under these keys).
struct TrainResult {
  std::string run_dir;
  double train_ppl = 0, valid_ppl = 0, test_ppl = 0;
  int64_t epochs = 0, steps = 0;
  int64_t best_epoch = 0;  // --keep-best: the epoch whose weights valid_ppl and test_ppl score (0: the last weights)
  int64_t averaged_updates =
      0;                      // --average-from: updates in the running mean of the weights (scored unless best_epoch)
  double tokens_per_sec = 0;  // over this process's training steps (not earlier sessions of a resumed run)
  double wall_seconds = 0;    // this process, start to finish
  double train_seconds = 0;   // time in training steps over the whole run, resumes included
  double input_seconds = 0;   // this process: time making the steps' windows and the epochs' orders (--shuffle)
  double input_share = 0;     // input_seconds over this process's time in training steps
  int64_t eval_batch = 0, bptt = 0;
  int64_t params = 0;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM (checkpoint saved)
  int signal = 0;
  // Data parallelism (zero with one rank): ranks, and per-step means of the gradient reduction.
  int ranks = 1;
  int64_t rollbacks = 0;      // divergence rollbacks over the whole run (train/guard.h), resumes included
  double max_loss_ratio = 0;  // the largest loss / running loss of this process's accepted steps (the guard's ratio)
  double raw_bytes_per_step = 0, payload_bytes_per_step = 0, wire_bytes_per_step = 0;
  double row_bytes_per_step = 0;  // sparse updates: the embedding's rows (ids and values) sent, apart from the block
  double comm_ms_per_step = 0, wait_ms_per_step = 0;

  // The ONE list of the result's JSON keys (train/json_fields.h); S is TrainResult, const or not.
  template <class S, class F>
  static void fields(S& r, F&& f) {
    f("run_dir", r.run_dir);
    f("train_ppl", r.train_ppl);
    f("valid_ppl", r.valid_ppl);
    f("test_ppl", r.test_ppl);
    f("epochs", r.epochs);
    f("best_epoch", r.best_epoch);
    f("averaged_updates", r.averaged_updates);
    f("steps", r.steps);
    f("tokens_per_sec", r.tokens_per_sec);
    f("wall_seconds", r.wall_seconds);
    f("train_seconds", r.train_seconds);
    f("input_seconds", r.input_seconds);
    f("input_share", r.input_share);
    f("eval_batch", r.eval_batch);
    f("bptt", r.bptt);
    f("parameters", r.params);
    f("interrupted", r.interrupted);
    f("ranks", r.ranks);
    f("rollbacks", r.rollbacks);
    f("max_loss_ratio", r.max_loss_ratio);
  }
  // The gradient traffic, reported with more than one rank.
  template <class S, class F>
  static void gradient_fields(S& r, F&& f) {
    f("raw_bytes_per_step", r.raw_bytes_per_step);
    f("payload_bytes_per_step", r.payload_bytes_per_step);
    f("wire_bytes_per_step", r.wire_bytes_per_step);
    f("row_bytes_per_step", r.row_bytes_per_step);
    f("comm_ms_per_step", r.comm_ms_per_step);
    f("wait_ms_per_step", r.wait_ms_per_step);
  }
};

// Runs (or resumes, if c.resume is set) a training run. UserError for bad input, before anything in
// the run directory is written.
// Data parallel over `comm`'s ranks (default: MPI_COMM_WORLD, which is one rank without mpirun; Comm{} is
// always one rank: tests use it to run a single-process reference inside an MPI job).
TrainResult run_training(const Config& c, const Comm& comm = Comm::world());

// One update on window (x, y) of `len` steps and B lanes: forward, backward, clip, optimizer. `grads`
// must be zero on entry; the optimizer's loop leaves them zero again. `step` is the 0-based update number (it keys the
// dropout masks). Returns Σ loss in nats. The training loop and `bench train` both call this, so the bench times the
// real step.
double train_step(const Engine& e, const ModelShape& s, Arena& params, Arena& grads, Arena& hidden, Workspace& ws,
                  Optimizer& opt, DropoutConfig drop, const int32_t* x, const int32_t* y, int64_t len, int64_t B,
                  double clip, double lr, int64_t step, PhaseTimes* times = nullptr, GradReducer* reducer = nullptr);

// The three phases of train_step, for a caller that decides between them (the trainer's divergence guard, which
// needs the loss summed over the ranks before anything is applied): the forward (Σ loss in nats over this
// process's lanes), the backward with the reduction over the ranks and the global gradient norm, and the update.
// A caller that stops after step_backward zeroes `grads` (and the gradient norm may be anything, NaN included).
double step_forward(const Engine& e, const ModelShape& s, const Arena& params, Arena& hidden, Workspace& ws,
                    DropoutConfig drop, const int32_t* x, const int32_t* y, int64_t len, int64_t B, int64_t step,
                    PhaseTimes* times = nullptr);
struct StepGradient {
  double norm = 0;                     // of the gradient summed over the ranks: the same on every rank
  const SparseGrad* sparse = nullptr;  // sparse updates: the embedding's rows and the idle ranges
};
StepGradient step_backward(const Engine& e, const ModelShape& s, const Arena& params, Arena& grads, Workspace& ws,
                           const Optimizer& opt, DropoutConfig drop, const int32_t* x, int64_t len, int64_t B,
                           int64_t step, PhaseTimes* times = nullptr, GradReducer* reducer = nullptr);
void step_update(const Engine& e, Arena& params, Arena& grads, Optimizer& opt, const StepGradient& g, double clip,
                 double lr, int64_t step, PhaseTimes* times = nullptr);

// SIGINT/SIGTERM set a flag that the step loop checks; the run saves a checkpoint and returns.
void install_stop_signals();

}  // namespace manylm
