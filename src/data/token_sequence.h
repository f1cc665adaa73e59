// token_sequence.h — one sequence of token ids made of pieces: the spans of a corpus's shards in order, or the
// blocks of an epoch's shuffled order (data/shuffle.h). Positions run over the pieces end to end; copy() finds
// the piece of its first position once (binary search over the pieces' starts) and then walks the pieces, so
// reading a window costs no search per token. The ids are not owned: the pieces point into memory (a mapped
// cache, a vector) that must outlive the sequence. Not a reader and not a batcher (batcher.h).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace manylm {

class TokenSequence {
 public:
  TokenSequence() : starts_{0} {}
  explicit TokenSequence(std::span<const int32_t> ids);  // one piece
  explicit TokenSequence(std::span<const std::span<const int32_t>> pieces);
  explicit TokenSequence(std::vector<std::span<const int32_t>> pieces);

  int64_t size() const { return starts_.back(); }
  size_t pieces() const { return pieces_.size(); }
  std::span<const int32_t> piece(size_t i) const { return pieces_[i]; }
  int64_t piece_start(size_t i) const { return starts_[i]; }
  // The piece holding position `pos` (0 ≤ pos < size()).
  size_t piece_of(int64_t pos) const;

  int32_t at(int64_t pos) const;
  // out[i · stride] = the token at pos + i for i < n; [pos, pos + n) must lie within the sequence.
  void copy(int64_t pos, int64_t n, int32_t* out, int64_t stride = 1) const;

 private:
  void index();  // starts_ from pieces_ (empty pieces dropped)
  std::vector<std::span<const int32_t>> pieces_;
  std::vector<int64_t> starts_;  // starts_[i]: the position of piece i's first token; starts_.back() = size()
};

}  // namespace manylm
