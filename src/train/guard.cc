// guard.cc — see guard.h.
#include "train/guard.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace manylm {

double running_loss_after(double running, double loss) {
  return running > 0 ? running + kRunningWeight * (loss - running) : loss;
}

std::string loss_verdict(double loss, double running, double uniform, double max_ratio, double* ratio) {
  if (ratio) *ratio = 0;
  if (!std::isfinite(loss)) return fmt::format("the loss is {}", loss);
  const double r = loss / std::max({running, uniform, 1e-9});
  if (ratio) *ratio = r;
  if (max_ratio > 0 && r > max_ratio)
    return fmt::format(
        "the loss {:.3f} nats per token is {:.2f} times the larger of the running loss {:.3f} and ln V {:.3f} "
        "(--diverge-ratio {})",
        loss, r, running, uniform, max_ratio);
  return {};
}

}  // namespace manylm
