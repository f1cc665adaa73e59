// batcher.h — the Zaremba et al. layout: the token sequence is cut into B contiguous streams of
// L = N / B tokens (the remainder is dropped, as PyTorch's batchify does); window k covers positions
// [k·T, k·T + T) of every stream, and the hidden state is carried from window to window. A lane range
// [lane0, lane1) selects the streams one worker owns. The sequence may be made of pieces (shards, or an
// epoch's shuffled blocks: data/shuffle.h); the layout is the same over their concatenation. Not a data
// loader: no threads, no reading of files.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "data/token_sequence.h"

namespace manylm {

class Batcher {
 public:
  // `batch_option`: the option that set B, named in the error.
  Batcher(TokenSequence seq, int64_t B, int64_t T, const std::string& what, const char* batch_option = "--batch")
      : seq_(std::move(seq)), B_(B), T_(T), L_(seq_.size() / B) {
    if (L_ < 2)
      fail("{}: corpus too small: {} tokens cannot fill {} streams of at least 2 tokens (lower {})", what, seq_.size(),
           B, batch_option);
  }
  Batcher(std::span<const int32_t> ids, int64_t B, int64_t T, const std::string& what,
          const char* batch_option = "--batch")
      : Batcher(TokenSequence(ids), B, T, what, batch_option) {}
  int64_t streams() const { return B_; }
  int64_t stream_length() const { return L_; }
  int64_t windows() const { return (L_ - 1 + T_ - 1) / T_; }
  int64_t targets() const { return (L_ - 1) * B_; }  // predicted tokens per pass
  const TokenSequence& sequence() const { return seq_; }

  // Fills x, y (len, lanes) time-major for window k and lanes [lane0, lane1); returns len (≤ T).
  int64_t window(int64_t k, int64_t lane0, int64_t lane1, std::vector<int32_t>& x, std::vector<int32_t>& y) const {
    const int64_t p = k * T_, len = std::min(T_, L_ - 1 - p), nb = lane1 - lane0;
    x.resize(static_cast<size_t>(len * nb));
    y.resize(static_cast<size_t>(len * nb));
    for (int64_t b = 0; b < nb; ++b) {  // lane b's positions, strided into column b of x and y
      const int64_t at = (lane0 + b) * L_ + p;
      seq_.copy(at, len, x.data() + b, nb);
      seq_.copy(at + 1, len, y.data() + b, nb);
    }
    return len;
  }

 private:
  TokenSequence seq_;
  int64_t B_, T_, L_;
};

}  // namespace manylm
