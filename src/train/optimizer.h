// optimizer.h — the update on the flat parameter block, one loop over one buffer whatever the model:
// global-norm gradient clipping, then SGD (weight decay as L2 in the gradient), Adam (L2 in the gradient)
// or AdamW (decoupled weight decay, Loshchilov & Hutter). Moments are Arenas carved from the parameter
// table (names prefixed "adam.m." / "adam.v."), so checkpoints hold them under their own names.
// A token embedding's gradient is zero outside the rows of the step's tokens (≈ 400 of PTB's 10,000 in a
// 20×35 window): with sparse updates it is kept as those rows only (RowGrad), and clipping and the update
// visit them and the dense rest of the block.
// Not the schedule (schedule.h).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/arena.h"
#include "core/engine.h"
#include "core/names.h"
#include "core/row_grad.h"

namespace manylm {

struct Config;

enum class OptimizerKind { Sgd, Adam, AdamW };
inline constexpr Named<OptimizerKind> kOptimizerNames[] = {
    {OptimizerKind::Sgd, "sgd"}, {OptimizerKind::Adam, "adam"}, {OptimizerKind::AdamW, "adamw"}};
constexpr std::span<const Named<OptimizerKind>> enum_names(OptimizerKind) { return kOptimizerNames; }

// --sparse-updates: keep the embedding's gradient as the rows a step touched and leave alone what a step did not
// reach (embedding rows, tail clusters of an adaptive softmax): zeroing, clipping, the update and the exchange
// across ranks visit only what was touched. For SGD without weight decay that is the dense result (auto turns
// it on there); for Adam/AdamW it is lazy, as PyTorch's SparseAdam: the moments of a row or cluster move only
// at the steps that touch it. Weight decay and weight averaging would touch every row every step: refused.
enum class SparseUpdates { Auto, On, Off };
inline constexpr Named<SparseUpdates> kSparseUpdatesNames[] = {
    {SparseUpdates::Auto, "auto"}, {SparseUpdates::On, "on"}, {SparseUpdates::Off, "off"}};
constexpr std::span<const Named<SparseUpdates>> enum_names(SparseUpdates) { return kSparseUpdatesNames; }

// What a step's gradient leaves out, so clipping and the update skip it: the embedding's gradient kept as
// rows (the gradient block then has no storage for encoder.weight, the parameter block's first tensor:
// grad_table), and ranges of the gradient block that are zero this step (tail clusters no row reached).
struct SparseGrad {
  const RowGrad* rows = nullptr;
  std::vector<std::pair<int64_t, int64_t>> idle;  // [begin, end) of the gradient block, ascending, disjoint
};

// Whether a run with this Config keeps sparse gradients (resolves auto). UserError for `on` with weight decay,
// weight averaging or --tied.
bool use_sparse_updates(const Config& c);

// Σ g² over the block; with `sparse`, over what it does not leave out, and its rows. Summed tensor by tensor and
// the first tensor (the embedding) row by row, so that a sparse step and the dense step with the same gradient
// give the same bits (what sparse leaves out is zero there): sparse SGD is the dense update bit for bit.
double grad_sum_squares(const Arena& grads, const SparseGrad* sparse = nullptr);

// Returns the gradient's global L2 norm before clipping. clip <= 0: no clipping.
double clip_grad_norm(Arena& grads, double clip);
// The factor clipping to `clip` applies to a gradient of norm `norm` (1 when no clipping is needed).
double clip_factor(double norm, double clip);
void sgd_update(Arena& params, const Arena& grads, double lr);

class Optimizer {
 public:
  Optimizer(const Config& c, const std::vector<TensorSpec>& table);
  // One update with learning rate lr of the gradient times grad_scale (the clipping factor); `step` is
  // the 1-based update number (Adam's bias correction). The same loop leaves grads zeroed for the next
  // step, so clipping, update and zeroing cost one pass over the parameters.
  // With `sparse` (only where sparse()), what it leaves out is left as it is (SGD: as the dense update would
  // leave it; Adam: lazily) and the rows are applied from sparse->rows.
  // The update tells `engine` that the parameters changed (bf16: their copy is stale).
  void update(const Engine& engine, Arena& params, Arena& grads, double lr, int64_t step, double grad_scale = 1.0,
              const SparseGrad* sparse = nullptr);
  bool sparse() const { return sparse_; }
  // Seconds the updates spent on the embedding's rows since the last call (bench train's update_rows).
  double take_rows_seconds() { return std::exchange(rows_seconds_, 0.0); }
  // The arenas a checkpoint must hold to resume bit-identically (empty for SGD).
  std::vector<Arena*> state();

 private:
  void dense_range(float* p, float* g, float* m, float* v, int64_t n, float lr, float gs, float c1, float c2) const;
  void rows_update(float* p, const RowGrad& rows, float lr, float gs, float c1, float c2);
  OptimizerKind kind_;
  bool sparse_;
  double rows_seconds_ = 0;
  double weight_decay_, beta1_, beta2_, eps_;
  Arena m_, v_;
};

}  // namespace manylm
