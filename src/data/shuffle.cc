// shuffle.cc — see shuffle.h.
#include "data/shuffle.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "core/rng.h"

namespace manylm {

namespace {

constexpr uint64_t kShuffleStream = 0x5348554646000000ull;  // "SHUFF": the epoch order's Philox streams

// Fisher–Yates: for i = n−1 … 1, swap element i with element j uniform in [0, i], j from Philox word pair i of
// the epoch's stream (64 bits times i + 1, the high half: a bias below n / 2^64).
template <class T>
void permute(std::vector<T>& v, uint64_t seed, int64_t epoch) {
  const CounterRng rng{seed, kShuffleStream + static_cast<uint64_t>(epoch)};
  for (size_t i = v.size(); i > 1; --i) {
    const Philox4 r = rng.block(i - 1);
    const uint64_t u = (uint64_t{r[0]} << 32) | r[1];
    const auto j = static_cast<size_t>((static_cast<unsigned __int128>(u) * i) >> 64);
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace

SentenceBlocks::SentenceBlocks(const TokenSequence& text, int32_t end_id, int64_t block_tokens) {
  const auto min_len = static_cast<size_t>(std::max<int64_t>(1, block_tokens));
  for (size_t p = 0; p < text.pieces(); ++p) {
    const std::span<const int32_t> piece = text.piece(p);
    size_t b = 0;
    while (b < piece.size()) {
      // The first sentence end at or after the block's minimum length, or the piece's end.
      const size_t from = std::min(piece.size(), b + min_len - 1);
      const auto end = std::find(piece.begin() + static_cast<std::ptrdiff_t>(from), piece.end(), end_id);
      const size_t e = end == piece.end() ? piece.size() : static_cast<size_t>(end - piece.begin()) + 1;
      blocks_.push_back(piece.subspan(b, e - b));
      b = e;
    }
  }
}

std::vector<int64_t> SentenceBlocks::permutation(uint64_t seed, int64_t epoch) const {
  std::vector<int64_t> order(blocks_.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  permute(order, seed, epoch);
  return order;
}

TokenSequence SentenceBlocks::epoch_order(uint64_t seed, int64_t epoch) const {
  std::vector<std::span<const int32_t>> order = blocks_;
  permute(order, seed, epoch);
  return TokenSequence(std::move(order));
}

}  // namespace manylm
