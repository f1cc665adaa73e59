// evaluate.h — perplexity of a token sequence under a model, with the same carried-state batching as
// training (B streams, T-step windows, fresh zero state at the start). Optionally the log-probability of
// every predicted token. Not the CLI's `eval` command (cli/eval.cc), which adds files and formats.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/arena.h"
#include "core/engine.h"
#include "data/token_sequence.h"
#include "model/shape.h"

namespace manylm {

struct EvalResult {
  double loss_sum = 0;  // nats
  int64_t tokens = 0;   // predicted tokens
  double mean_loss() const { return tokens ? loss_sum / static_cast<double>(tokens) : 0.0; }
  double perplexity() const;
};

// logp (optional) receives, for stream-major position b·L + p + 1, log p(token); its size is B·L.
// Lanes [lane0, lane1) only (lane1 < 0: all B): data-parallel ranks each evaluate their own lanes and sum
// the results; logp needs all lanes. The weights may have been written since `e` last multiplied them
// (a best or averaged copy loaded into the block): evaluate tells `e` so (bf16: their copy is remade).
EvalResult evaluate(const Engine& e, const ModelShape& s, const Arena& params, const TokenSequence& ids, int64_t B,
                    int64_t T, const std::string& what, std::vector<float>* logp = nullptr, int64_t lane0 = 0,
                    int64_t lane1 = -1);
inline EvalResult evaluate(const Engine& e, const ModelShape& s, const Arena& params, std::span<const int32_t> ids,
                           int64_t B, int64_t T, const std::string& what, std::vector<float>* logp = nullptr,
                           int64_t lane0 = 0, int64_t lane1 = -1) {
  return evaluate(e, s, params, TokenSequence(ids), B, T, what, logp, lane0, lane1);
}

}  // namespace manylm
