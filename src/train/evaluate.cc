// evaluate.cc — see evaluate.h.
#include "train/evaluate.h"

#include <cmath>
#include <stdexcept>

#include "data/batcher.h"
#include "model/model.h"

namespace manylm {

double EvalResult::perplexity() const { return std::exp(mean_loss()); }

EvalResult evaluate(const Engine& e, const ModelShape& s, const Arena& params, const TokenSequence& ids, int64_t B,
                    int64_t T, const std::string& what, std::vector<float>* logp, int64_t lane0, int64_t lane1) {
  Batcher batcher(ids, B, T, what);
  if (lane1 < 0) lane1 = B;
  const int64_t nb = lane1 - lane0;
  EvalResult r;
  if (nb <= 0) return r;
  if (logp && nb != B) throw std::logic_error("evaluate: log-probabilities need every lane");
  e.constants_changed();
  Workspace ws(s, T, nb);
  Arena state(state_table(s, nb));
  std::vector<int32_t> x, y;
  std::vector<float> lp(static_cast<size_t>(T * B));
  const int64_t L = batcher.stream_length();
  if (logp) logp->assign(static_cast<size_t>(B * L), 0.0f);
  for (int64_t k = 0; k < batcher.windows(); ++k) {
    const int64_t len = batcher.window(k, lane0, lane1, x, y);
    r.loss_sum +=
        model_forward(e, s, params, ws, x.data(), y.data(), len, nb, state, false, logp ? lp.data() : nullptr);
    r.tokens += len * nb;
    if (logp)
      for (int64_t t = 0; t < len; ++t)
        for (int64_t b = 0; b < B; ++b)
          (*logp)[static_cast<size_t>(b * L + k * T + t + 1)] = lp[static_cast<size_t>(t * B + b)];
  }
  return r;
}

}  // namespace manylm
