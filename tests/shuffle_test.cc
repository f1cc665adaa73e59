// shuffle_test.cc — the input order of training: TokenSequence (ids in pieces: shards, or an epoch's shuffled
// blocks) against the plain concatenation, the Batcher over pieces against the Batcher over one span, and
// --shuffle sentences (data/shuffle.h): blocks of whole sentences, the permutation's reproducibility, and every
// token and sentence of an epoch read once over the lanes of 1, 2 and 4 ranks. Not the trainer's resume
// (train_test.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "core/parallel.h"
#include "data/batcher.h"
#include "data/shuffle.h"
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

// ---------------------------------------------------------------------------------------------
// --shuffle sentences

constexpr int32_t kEnd = 0;  // the sentence end; sentence s's words are all the id s + 1

// `sentences` sentences of 1 to 12 words (a fixed pattern), each ended by kEnd, cut into `shards` pieces of
// about equal length: at arbitrary points (mid-sentence too: a shard need not end with a sentence), or with
// `whole` after a sentence end (as shards of text files: every line ends with one).
struct Sentences {
  std::vector<int32_t> ids;
  std::vector<int64_t> length;  // words of sentence s, its end not counted
  std::vector<std::span<const int32_t>> shards;
  Sentences(int32_t sentences, int shards_wanted, bool whole = false) {
    for (int32_t s = 0; s < sentences; ++s) {
      length.push_back(1 + (s * 7 + s / 3) % 12);
      ids.insert(ids.end(), static_cast<size_t>(length.back()), s + 1);
      ids.push_back(kEnd);
    }
    const size_t n = ids.size();
    size_t from = 0;
    for (int k = 1; k <= shards_wanted; ++k) {
      size_t to = n * static_cast<size_t>(k) / static_cast<size_t>(shards_wanted);
      while (whole && to < n && ids[to - 1] != kEnd) ++to;
      shards.emplace_back(ids.data() + from, to - from);
      from = to;
    }
  }
  // Shard ends that cut a sentence in two.
  int64_t cuts() const {
    int64_t c = 0;
    for (size_t k = 0; k + 1 < shards.size(); ++k) c += !shards[k].empty() && shards[k].back() != kEnd;
    return c;
  }
};

TEST(Shuffle, BlocksHoldWholeSentencesAndNeverSpanTwoShards) {
  const Sentences text(500, 3);
  const TokenSequence seq(text.shards);
  for (int64_t min_len : {1, 2, 20, 100, 100000}) {
    SCOPED_TRACE(::testing::Message() << "block tokens " << min_len);
    const SentenceBlocks blocks(seq, kEnd, min_len);
    std::vector<int32_t> joined;
    size_t shard = 0, in_shard = 0;  // where the next block must start
    for (int64_t i = 0; i < blocks.blocks(); ++i) {
      const std::span<const int32_t> b = blocks.block(i);
      ASSERT_FALSE(b.empty());
      while (in_shard == text.shards[shard].size()) ++shard, in_shard = 0;
      ASSERT_EQ(b.data(), text.shards[shard].data() + in_shard) << "blocks in order, pointing into their shard";
      in_shard += b.size();
      ASSERT_LE(in_shard, text.shards[shard].size()) << "block " << i << " spans two shards";
      const bool shard_end = in_shard == text.shards[shard].size();
      if (!shard_end) {  // ends a sentence, and only the first one at or after the minimum length
        EXPECT_EQ(b.back(), kEnd) << "block " << i;
        EXPECT_GE(static_cast<int64_t>(b.size()), min_len) << "block " << i;
        EXPECT_EQ(std::count(b.begin() + std::min<int64_t>(min_len, b.size()) - 1, b.end() - 1, kEnd), 0)
            << "block " << i << " runs past the first sentence end after its minimum length";
      }
      joined.insert(joined.end(), b.begin(), b.end());
    }
    EXPECT_EQ(joined, text.ids);
    ASSERT_EQ(text.cuts(), 1) << "the test must cut a sentence at a shard end";
    if (min_len == 1) {
      EXPECT_EQ(blocks.blocks(), 500 + 1) << "every sentence, plus one for the sentence a shard cuts";
    }
    if (min_len == 100000) {
      EXPECT_EQ(blocks.blocks(), 3) << "one per shard";
    }
  }
}

TEST(Shuffle, EachEpochHasItsOwnReproduciblePermutation) {
  const Sentences text(300, 2);
  const SentenceBlocks blocks(TokenSequence(text.shards), kEnd, 8);
  const int64_t n = blocks.blocks();
  ASSERT_GT(n, 50);
  const std::vector<int64_t> p0 = blocks.permutation(7, 0);
  std::vector<int64_t> sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(static_cast<size_t>(n));
  std::iota(iota.begin(), iota.end(), int64_t{0});
  EXPECT_EQ(sorted, iota) << "a permutation";
  EXPECT_EQ(blocks.permutation(7, 0), p0) << "a pure function of (seed, epoch)";
  EXPECT_NE(blocks.permutation(7, 1), p0);
  EXPECT_NE(blocks.permutation(8, 0), p0);
  EXPECT_NE(p0, iota);
  // The epoch's sequence is the blocks in that order.
  const TokenSequence order = blocks.epoch_order(7, 0);
  ASSERT_EQ(order.size(), static_cast<int64_t>(text.ids.size()));
  int64_t at = 0;
  for (int64_t k : p0) {
    const std::span<const int32_t> b = blocks.block(k);
    std::vector<int32_t> got(b.size());
    order.copy(at, static_cast<int64_t>(b.size()), got.data());
    ASSERT_TRUE(std::equal(b.begin(), b.end(), got.begin()));
    at += static_cast<int64_t>(b.size());
  }
  // Known answer: the order of checkpointed runs must not change with a new build (Philox, Fisher–Yates).
  std::vector<int32_t> ten(20);
  for (int32_t i = 0; i < 10; ++i) ten[static_cast<size_t>(2 * i)] = i + 1, ten[static_cast<size_t>(2 * i + 1)] = kEnd;
  const SentenceBlocks small(TokenSequence(std::span<const int32_t>(ten)), kEnd, 1);
  EXPECT_EQ(small.permutation(1, 0), (std::vector<int64_t>{3, 6, 2, 0, 1, 4, 8, 7, 5, 9}));
}

// Every token of an epoch's first B·L positions (the stream cut drops the last N mod B) is read exactly once over
// the lanes of all ranks, each rank reading its lanes [static_range) as the trainer does; sentences are read
// whole, by one rank, except where a rank's lanes end mid-sentence (at most ranks − 1 sentences, the head read by
// one rank and the tail by the next) and those with words in the tail the stream cut drops; every sentence of the text
// is in the epoch's order once. Counted for 1, 2 and 4 ranks, several epochs, block sizes and windows.
TEST(Shuffle, RanksReadDisjointSentencesCoveringTheEpochOnce) {
  const Sentences text(997, 4, true);
  ASSERT_EQ(text.cuts(), 0);
  const int32_t S = 997;
  for (int64_t min_len : {1, 30})
    for (int ranks : {1, 2, 4})
      for (int64_t epoch : {0, 1, 5}) {
        SCOPED_TRACE(::testing::Message() << "block " << min_len << " ranks " << ranks << " epoch " << epoch);
        const int64_t B = 8, T = 13;
        const SentenceBlocks blocks(TokenSequence(text.shards), kEnd, min_len);
        const Batcher batcher(blocks.epoch_order(3, epoch), B, T, "t.txt");
        const int64_t L = batcher.stream_length();
        // read[r][s]: words of sentence s that rank r read; ends[r]: sentence ends rank r read.
        std::vector<std::vector<int64_t>> read(static_cast<size_t>(ranks), std::vector<int64_t>(S + 1, 0));
        int64_t ends = 0, total = 0;
        std::vector<int32_t> x, y;
        for (int r = 0; r < ranks; ++r) {
          const auto [lane0, lane1] = static_range(B, r, ranks);
          const int64_t nb = lane1 - lane0;
          auto count = [&](int32_t id) {
            id == kEnd ? ++ends : ++read[static_cast<size_t>(r)][static_cast<size_t>(id)];
          };
          for (int64_t k = 0; k < batcher.windows(); ++k) {
            const int64_t len = batcher.window(k, lane0, lane1, x, y);
            if (k == 0)
              for (int64_t b = 0; b < nb; ++b) count(x[static_cast<size_t>(b)]);  // each lane's first token
            for (int32_t id : y) count(id);
            total += (k == 0 ? nb : 0) + len * nb;
          }
        }
        EXPECT_EQ(total, B * L) << "every position of the streams once";
        EXPECT_LT(static_cast<int64_t>(text.ids.size()) - B * L, B) << "the stream cut drops fewer than B tokens";
        // What the epoch's order holds in [0, B·L): the same counts, in total over the ranks.
        const TokenSequence& order = batcher.sequence();
        std::vector<int64_t> expect(S + 1, 0);
        int64_t expect_ends = 0;
        for (int64_t p = 0; p < B * L; ++p)
          order.at(p) == kEnd ? ++expect_ends : ++expect[static_cast<size_t>(order.at(p))];
        EXPECT_EQ(ends, expect_ends);
        int shared = 0, partial = 0;
        for (int32_t s = 1; s <= S; ++s) {
          int64_t sum = 0;
          int readers = 0;
          for (int r = 0; r < ranks; ++r) {
            sum += read[static_cast<size_t>(r)][static_cast<size_t>(s)];
            readers += read[static_cast<size_t>(r)][static_cast<size_t>(s)] > 0;
          }
          ASSERT_EQ(sum, expect[static_cast<size_t>(s)]) << "sentence " << s;
          ASSERT_LE(readers, 2) << "sentence " << s;
          shared += readers == 2;
          if (sum != text.length[static_cast<size_t>(s - 1)]) ++partial;
        }
        std::vector<bool> in_tail(S + 1, false);  // sentences with words in the dropped [B·L, N)
        for (int64_t p = B * L; p < order.size(); ++p) in_tail[static_cast<size_t>(order.at(p))] = true;
        for (int32_t s = 1; s <= S; ++s)
          if (!in_tail[static_cast<size_t>(s)]) {
            EXPECT_EQ(expect[static_cast<size_t>(s)], text.length[static_cast<size_t>(s - 1)]) << "sentence " << s;
          }
        EXPECT_LE(shared, ranks - 1) << "sentences split between two ranks: only at the ranks' lane boundaries";
        EXPECT_LE(partial, B) << "only sentences in the dropped tail (fewer than B tokens) are read in part";
        // The whole order holds every sentence once, whole.
        std::vector<int64_t> whole(S + 1, 0);
        for (int64_t p = 0; p < order.size(); ++p) ++whole[static_cast<size_t>(order.at(p))];
        for (int32_t s = 1; s <= S; ++s)
          ASSERT_EQ(whole[static_cast<size_t>(s)], text.length[static_cast<size_t>(s - 1)]);
        EXPECT_EQ(whole[kEnd], S);
      }
}

}  // namespace
}  // namespace manylm
