// step.cc — one training step in three phases (trainer.h: step_forward, step_backward, step_update) and the
// whole of it (train_step, which the bench times). The divergence guard (trainer.cc) decides between the phases.
// Not the loop.
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "mpi/reducer.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace manylm {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Sparse updates: the embedding's rows (summed over ranks), and the gradient ranges of the tail clusters that
// no row reached on any rank (with a lossy codec none: its residuals can make any block nonzero).
const SparseGrad* step_sparsity(const ModelShape& s, Workspace& ws, const Arena& grads, GradReducer* reducer) {
  if (!ws.sparse_embedding) throw std::logic_error("train_step: sparse updates need Workspace::sparse_embedding");
  thread_local SparseGrad sg;  // its vectors' storage is reused from step to step
  thread_local std::vector<uint8_t> touched;
  touched.assign(static_cast<size_t>(s.clusters()), 0);
  for (int64_t i = 0; i < s.clusters(); ++i) touched[static_cast<size_t>(i)] = ws.adaptive.touched(i) ? 1 : 0;
  if (reducer) reducer->reduce_rows(*ws.sparse_embedding, touched);
  sg.rows = ws.sparse_embedding;
  sg.idle.clear();
  if (reducer && !reducer->lossless()) return &sg;
  for (int64_t i = 0; i < s.clusters(); ++i) {
    if (touched[static_cast<size_t>(i)]) continue;
    const TensorView last = grads[static_cast<size_t>(ws.ix.tail_out[i])];
    const int64_t b = static_cast<int64_t>(grads.offset(static_cast<size_t>(ws.ix.tail_proj[i])));
    sg.idle.emplace_back(b, static_cast<int64_t>(grads.offset(static_cast<size_t>(ws.ix.tail_out[i]))) + last.numel());
  }
  return &sg;
}

}  // namespace

double step_forward(const Engine& e, const ModelShape& s, const Arena& params, Arena& hidden, Workspace& ws,
                    DropoutConfig drop, const int32_t* x, const int32_t* y, int64_t len, int64_t B, int64_t step,
                    PhaseTimes* times) {
  drop.step = static_cast<uint64_t>(step);  // the masks are keyed by the 0-based update number
  return model_forward(e, s, params, ws, x, y, len, B, hidden, true, nullptr, &drop, times);
}

StepGradient step_backward(const Engine& e, const ModelShape& s, const Arena& params, Arena& grads, Workspace& ws,
                           const Optimizer& opt, DropoutConfig drop, const int32_t* x, int64_t len, int64_t B,
                           int64_t step, PhaseTimes* times, GradReducer* reducer) {
  drop.step = static_cast<uint64_t>(step);                           // grads are zero: the previous update cleared them
  model_backward(e, s, params, ws, x, len, B, grads, &drop, times);  // launches reducer buckets as they finish
  const auto t0 = Clock::now();
  if (reducer) reducer->finish();  // grads: the sum over ranks, the same on every rank
  StepGradient g;
  g.sparse = opt.sparse() ? step_sparsity(s, ws, grads, reducer) : nullptr;
  g.norm = std::sqrt(grad_sum_squares(grads, g.sparse));
  if (times) times->update += seconds_since(t0);
  return g;
}

void step_update(const Engine& e, Arena& params, Arena& grads, Optimizer& opt, const StepGradient& g, double clip,
                 double lr, int64_t step, PhaseTimes* times) {
  const auto t0 = Clock::now();
  opt.update(e, params, grads, lr, step + 1, clip_factor(g.norm, clip), g.sparse);  // marks the bf16 copy stale
  if (times) times->update += seconds_since(t0), times->update_rows += opt.take_rows_seconds();
}

double train_step(const Engine& e, const ModelShape& s, Arena& params, Arena& grads, Arena& hidden, Workspace& ws,
                  Optimizer& opt, DropoutConfig drop, const int32_t* x, const int32_t* y, int64_t len, int64_t B,
                  double clip, double lr, int64_t step, PhaseTimes* times, GradReducer* reducer) {
  const double loss = step_forward(e, s, params, hidden, ws, drop, x, y, len, B, step, times);
  if (!std::isfinite(loss)) fail("training diverged at step {} (loss is {}): lower --lr or set --clip", step + 1, loss);
  const StepGradient g = step_backward(e, s, params, grads, ws, opt, drop, x, len, B, step, times, reducer);
  if (!std::isfinite(g.norm))  // the same on every rank (the reduced gradient): all stop, nothing applied
    fail("training diverged at step {} (the gradient norm is {}): lower --lr or set --clip", step + 1, g.norm);
  step_update(e, params, grads, opt, g, clip, lr, step, times);
  return loss;
}

}  // namespace manylm
