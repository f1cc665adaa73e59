// token_sequence.cc — see token_sequence.h.
#include "data/token_sequence.h"

#include <algorithm>
#include <stdexcept>

namespace manylm {

TokenSequence::TokenSequence(std::span<const int32_t> ids) : pieces_{ids} { index(); }

TokenSequence::TokenSequence(std::span<const std::span<const int32_t>> pieces) : pieces_(pieces.begin(), pieces.end()) {
  index();
}

TokenSequence::TokenSequence(std::vector<std::span<const int32_t>> pieces) : pieces_(std::move(pieces)) { index(); }

void TokenSequence::index() {
  std::erase_if(pieces_, [](std::span<const int32_t> p) { return p.empty(); });
  starts_.assign(pieces_.size() + 1, 0);
  for (size_t i = 0; i < pieces_.size(); ++i) starts_[i + 1] = starts_[i] + static_cast<int64_t>(pieces_[i].size());
}

size_t TokenSequence::piece_of(int64_t pos) const {
  // The last start ≤ pos; starts_ is strictly increasing (no empty pieces).
  return static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end() - 1, pos) - starts_.begin()) - 1;
}

int32_t TokenSequence::at(int64_t pos) const {
  const size_t i = piece_of(pos);
  return pieces_[i][static_cast<size_t>(pos - starts_[i])];
}

void TokenSequence::copy(int64_t pos, int64_t n, int32_t* out, int64_t stride) const {
  if (n <= 0) return;
  if (pos < 0 || pos + n > size()) throw std::out_of_range("TokenSequence::copy: positions out of the sequence");
  size_t i = piece_of(pos);
  int64_t off = pos - starts_[i];
  while (n > 0) {
    const std::span<const int32_t> p = pieces_[i];
    const int64_t take = std::min(n, static_cast<int64_t>(p.size()) - off);
    const int32_t* src = p.data() + off;
    if (stride == 1) {
      std::copy(src, src + take, out);
    } else {
      for (int64_t k = 0; k < take; ++k) out[k * stride] = src[k];
    }
    out += take * stride;
    n -= take;
    off = 0;
    ++i;
  }
}

}  // namespace manylm
