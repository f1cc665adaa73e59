// shuffle_test.cc — the input order of training: TokenSequence (ids in pieces: shards, or an epoch's shuffled
// blocks) against the plain concatenation, and the Batcher over pieces against the Batcher over one span.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "data/batcher.h"
#include "data/token_sequence.h"

namespace manylm {
namespace {

// Ids 100, 101, … cut into pieces of the given lengths (zeros included: empty pieces).
struct Pieces {
  std::vector<int32_t> all;
  std::vector<std::span<const int32_t>> spans;
  explicit Pieces(std::initializer_list<int64_t> lengths) {
    all.resize(static_cast<size_t>(std::accumulate(lengths.begin(), lengths.end(), int64_t{0})));
    std::iota(all.begin(), all.end(), 100);
    size_t at = 0;
    for (int64_t n : lengths) {
      spans.emplace_back(all.data() + at, static_cast<size_t>(n));
      at += static_cast<size_t>(n);
    }
  }
};

TEST(TokenSequence, CopyWalksThePiecesAsTheirConcatenation) {
  const Pieces p({5, 0, 1, 7, 0, 3, 11});
  const TokenSequence seq(p.spans);
  ASSERT_EQ(seq.size(), static_cast<int64_t>(p.all.size()));
  EXPECT_EQ(seq.pieces(), 5u) << "empty pieces are dropped";
  for (int64_t pos = 0; pos < seq.size(); ++pos) ASSERT_EQ(seq.at(pos), p.all[static_cast<size_t>(pos)]);
  for (int64_t stride : {1, 3})
    for (int64_t pos = 0; pos < seq.size(); ++pos)
      for (int64_t n = 0; pos + n <= seq.size(); ++n) {
        std::vector<int32_t> out(static_cast<size_t>(std::max<int64_t>(1, n * stride)), -1);
        seq.copy(pos, n, out.data(), stride);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(out[static_cast<size_t>(i * stride)], p.all[static_cast<size_t>(pos + i)])
              << "pos " << pos << " n " << n << " stride " << stride;
      }
  std::vector<int32_t> out(4);
  EXPECT_THROW(seq.copy(seq.size() - 2, 3, out.data()), std::out_of_range);
  const TokenSequence empty;
  EXPECT_EQ(empty.size(), 0);
}

// The Batcher reads a sequence in pieces exactly as the same ids in one span: every window, every lane range.
TEST(TokenSequence, BatcherOverPiecesEqualsBatcherOverOneSpan) {
  const Pieces p({9, 1, 0, 17, 4, 30});
  for (int64_t B : {1, 2, 3, 5})
    for (int64_t T : {1, 4, 7}) {
      const Batcher one(std::span<const int32_t>(p.all), B, T, "t.txt");
      const Batcher pieces(TokenSequence(p.spans), B, T, "t.txt");
      ASSERT_EQ(one.windows(), pieces.windows());
      std::vector<int32_t> x1, y1, x2, y2;
      for (int64_t k = 0; k < one.windows(); ++k)
        for (int64_t l0 = 0; l0 < B; ++l0)
          for (int64_t l1 = l0 + 1; l1 <= B; ++l1) {
            ASSERT_EQ(one.window(k, l0, l1, x1, y1), pieces.window(k, l0, l1, x2, y2));
            ASSERT_EQ(x1, x2) << "B " << B << " T " << T << " k " << k;
            ASSERT_EQ(y1, y2);
          }
    }
}

}  // namespace
}  // namespace manylm
