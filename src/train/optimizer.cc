// optimizer.cc — see optimizer.h.
#include "train/optimizer.h"

#include <cmath>

#include "core/kernels.h"

namespace manylm {

double clip_grad_norm(Arena& grads, double clip) {
  const double norm = std::sqrt(sum_squares(grads.data(), static_cast<int64_t>(grads.size())));
  if (clip > 0 && norm > clip) scale(grads.data(), static_cast<int64_t>(grads.size()), static_cast<float>(clip / norm));
  return norm;
}

void sgd_update(Arena& params, const Arena& grads, double lr) {
  // θ ← θ − lr · g
  axpy(params.data(), grads.data(), static_cast<int64_t>(params.size()), static_cast<float>(-lr));
}

}  // namespace manylm
