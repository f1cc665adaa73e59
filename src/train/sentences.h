// sentences.h — log-probabilities of whole token sequences, many at once: each sequence one lane of a batch, fed
// from the start token, padded to the longest, in windows of at most a given number of steps (state carried between
// them); padded positions never reach the output layer. What `eval --sentences`, `eval --per-word`, `rescore` and
// the Python module's scores share. Lanes start from the zero state or from one given state; the state after lane
// 0's last token can be kept (rescoring with the state carried across utterances). Not the perplexity of a
// corpus in B streams (evaluate.h) and not file formats (cli/).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/arena.h"
#include "core/engine.h"
#include "model/model.h"
#include "model/shape.h"

namespace manylm {

class SentenceScorer {
 public:
  // `start`: the first input of every lane (the vocabulary's start(): <eos> for words). `max_steps`: the longest
  // window; 0: as long as the longest sequence, bounded so the output layer's buffer stays under ~128 MB.
  SentenceScorer(const Engine& e, const ModelShape& s, const Arena& params, int32_t start, int64_t max_steps = 0);
  ~SentenceScorer();

  // Σ ln p(token) over each sequence's tokens, p(seq[i] | start, seq[0..i)) (the caller appends the sentence end).
  // init: null (zero state) or a one-lane state_table arena every lane starts from. final0: null, or a one-lane
  // arena receiving lane 0's state after its inputs (the start token and every token but its last; init if it has
  // no token): a next sentence fed from `start` continues from it as running text does. per_token: null, or receives
  // every token's ln p, the sequences one after the other.
  std::vector<double> score(std::span<const std::span<const int32_t>> seqs, const Arena* init = nullptr,
                            Arena* final0 = nullptr, std::vector<float>* per_token = nullptr);

 private:
  void reserve(int64_t T, int64_t B);
  void start_lanes(int64_t B, const Arena* init);
  void select_rows(std::span<const std::span<const int32_t>> seqs, const std::vector<int64_t>& len, int64_t t0,
                   int64_t Tw);

  const Engine& e_;
  const ModelShape& s_;
  const Arena& params_;
  int32_t start_;
  int64_t max_steps_;
  std::unique_ptr<Workspace> ws_;  // (T, B) capacity, grown when a batch needs more
  std::unique_ptr<Arena> state_;   // (B) lanes
  int64_t cap_T_ = 0, cap_B_ = 0;
  std::vector<int32_t> x_, y_, rows_, rep_;  // x (T, B); the scored rows, their targets, the rows they repeat
  // The lanes' token prefixes as nodes of a trie (node 0: the empty prefix): each lane's node, each node's first
  // scored row (−1: none yet; a node has one depth, so one window), and (node, token) → child.
  std::vector<int32_t> node_, first_row_;
  std::unordered_map<uint64_t, int32_t> child_;
  std::vector<float> lp_;
};

}  // namespace manylm
