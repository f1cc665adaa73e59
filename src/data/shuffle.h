// shuffle.h — the order in which each epoch reads the training text (--shuffle). none: the text as it is,
// one contiguous stream (the Penn Treebank convention). sentences: the text is cut once into blocks of whole
// sentences — a block ends at the first sentence end at or after --shuffle-block tokens, never spans two
// shards, and the last block of a shard ends with it — and every epoch reads the blocks in a permutation that
// is a pure function of (seed, epoch): Fisher–Yates over counter-based Philox numbers, the same on every
// machine, rank and thread count, so a resumed run rebuilds the order it stopped in. The permuted blocks form
// one sequence that the batcher cuts into B streams as it cuts the plain text. The index is one span per block
// (16 bytes) plus, for the epoch's order, another span and a start (24 bytes): about 40 MB for 10^9 tokens in
// blocks of 1,024. Not the batcher (batcher.h) and not a reader.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/names.h"
#include "data/token_sequence.h"

namespace manylm {

enum class Shuffle { None, Sentences };
inline constexpr Named<Shuffle> kShuffleNames[] = {{Shuffle::None, "none"}, {Shuffle::Sentences, "sentences"}};
constexpr std::span<const Named<Shuffle>> enum_names(Shuffle) { return kShuffleNames; }

class SentenceBlocks {
 public:
  SentenceBlocks() = default;
  // Blocks of whole sentences of `text` (each sentence ends with the token `end_id`) of at least
  // `block_tokens` tokens. The ids stay where `text`'s pieces point.
  SentenceBlocks(const TokenSequence& text, int32_t end_id, int64_t block_tokens);

  int64_t blocks() const { return static_cast<int64_t>(blocks_.size()); }
  std::span<const int32_t> block(int64_t i) const { return blocks_[static_cast<size_t>(i)]; }
  // Block indices in epoch `epoch`'s order (0-based epochs).
  std::vector<int64_t> permutation(uint64_t seed, int64_t epoch) const;
  // The blocks in that order, as one sequence of all the text's tokens.
  TokenSequence epoch_order(uint64_t seed, int64_t epoch) const;

 private:
  std::vector<std::span<const int32_t>> blocks_;
};

}  // namespace manylm
