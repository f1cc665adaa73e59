// optimizer.h — the update on the flat parameter block, one loop over one buffer whatever the model:
// global-norm gradient clipping, then SGD (weight decay as L2 in the gradient), Adam (L2 in the gradient)
// or AdamW (decoupled weight decay, Loshchilov & Hutter). Moments are Arenas carved from the parameter
// table (names prefixed "adam.m." / "adam.v."), so checkpoints hold them under their own names.
// A token embedding's gradient is zero outside the rows of the step's tokens (≈ 400 of PTB's 10,000 in a
// 20×35 window): with SparseRows, clipping's norm and the SGD update visit only those rows of it and the
// rest of the block densely — a third less memory traffic in ptb-medium's update pass, same result.
// Not the schedule (schedule.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/engine.h"
#include "core/names.h"

namespace manylm {

struct Config;

enum class OptimizerKind { Sgd, Adam, AdamW };
inline constexpr Named<OptimizerKind> kOptimizerNames[] = {
    {OptimizerKind::Sgd, "sgd"}, {OptimizerKind::Adam, "adam"}, {OptimizerKind::AdamW, "adamw"}};
constexpr std::span<const Named<OptimizerKind>> enum_names(OptimizerKind) { return kOptimizerNames; }

// One tensor of the flat block whose gradient is nonzero only in `rows` (distinct, any order): rows of
// `width` floats, the tensor at [offset, offset + count·width).
struct SparseRows {
  int64_t offset = 0, count = 0, width = 0;
  std::vector<int32_t> rows;
  // The distinct values of ids[0..n) (each in [0, count)), ascending.
  void set_rows(const int32_t* ids, int64_t n);
};

// Σ g² over the block; with `sparse`, over its rows and the rest (equal to the dense sum up to rounding
// when the gradient is zero outside them).
double grad_sum_squares(const Arena& grads, const SparseRows* sparse = nullptr);

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
  // With `sparse` (only where sparse_ok()), the sparse tensor's other rows are left as they are: for SGD
  // without weight decay a zero gradient changes nothing, so the result is the dense update's.
  // The update tells `engine` that the parameters changed (bf16: their copy is stale).
  void update(const Engine& engine, Arena& params, Arena& grads, double lr, int64_t step, double grad_scale = 1.0,
              const SparseRows* sparse = nullptr);
  bool sparse_ok() const { return kind_ == OptimizerKind::Sgd && weight_decay_ == 0.0; }
  // The arenas a checkpoint must hold to resume bit-identically (empty for SGD).
  std::vector<Arena*> state();

 private:
  OptimizerKind kind_;
  double weight_decay_, beta1_, beta2_, eps_;
  Arena m_, v_;
};

}  // namespace manylm
