// sentences.cc — see sentences.h.
#include "train/sentences.h"

#include <algorithm>
#include <cstring>

namespace manylm {

namespace {
// The output layer's buffer holds (T·B, head) floats: windows are cut so it stays under this many.
constexpr int64_t kLogitBudget = int64_t{1} << 25;
}  // namespace

SentenceScorer::SentenceScorer(const Engine& e, const ModelShape& s, const Arena& params, int32_t start,
                               int64_t max_steps)
    : e_(e), s_(s), params_(params), start_(start), max_steps_(max_steps) {}

SentenceScorer::~SentenceScorer() = default;

// A workspace for windows of T steps and B lanes: the one held when it is large enough, else a new one (of the
// larger of both sizes, T rounded up to 16, while that stays within the budget, so alternating shapes do not
// reallocate). The full softmax scores without an output buffer (full_score.h): only the adaptive output has one;
// the budget bounds the other buffers (T·B·4H floats per layer) for any output.
void SentenceScorer::reserve(int64_t T, int64_t B) {
  if (ws_ && T <= cap_T_ && B <= cap_B_) return;
  int64_t t = std::max((T + 15) / 16 * 16, cap_T_), b = std::max(B, cap_B_);
  if (t * b * s_.head_size() > kLogitBudget) t = T, b = B;  // windows were sized by the same budget (score)
  ws_ = std::make_unique<Workspace>(s_, t, b, false, s_.adaptive() ? -1 : 1);
  state_ = std::make_unique<Arena>(state_table(s_, b));
  cap_T_ = t, cap_B_ = b;
  e_.constants_changed();
}

// Every lane's state: zeros, or `init` (one lane) copied to each of the B lanes.
void SentenceScorer::start_lanes(int64_t B, const Arena* init) {
  const int64_t H = s_.hidden;
  for (size_t k = 0; k < state_->table().size(); ++k) {
    float* d = (*state_)[k].data;
    for (int64_t b = 0; b < B; ++b)
      if (init)
        std::memcpy(d + b * H, (*init)[k].data, H * sizeof(float));
      else
        std::memset(d + b * H, 0, H * sizeof(float));
  }
}

// The window's inputs x_ (Tw, B) from position t0 on, its scored rows (time-major), their targets, and rep_: for
// each row the first row of the window at the same prefix node. Lanes start from one state, so lanes that read the
// same tokens so far have the same hidden state: n-best hypotheses share their prefixes, and the output layer's
// normalizer is computed once per node (model_score_rows).
void SentenceScorer::select_rows(std::span<const std::span<const int32_t>> seqs, const std::vector<int64_t>& len,
                                 int64_t t0, int64_t Tw) {
  const int64_t B = static_cast<int64_t>(seqs.size());
  rows_.clear(), y_.clear(), rep_.clear();
  for (int64_t t = 0; t < Tw; ++t)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t p = t0 + t;  // position p predicts seq[p] from input seq[p − 1] (the start token at p = 0)
      x_[t * B + b] = p == 0 || p > len[b] ? start_ : seqs[b][p - 1];
      if (p >= len[b]) continue;
      const int32_t r = static_cast<int32_t>(rows_.size()), tok = seqs[b][p];
      rows_.push_back(static_cast<int32_t>(t * B + b)), y_.push_back(tok);
      int32_t& first = first_row_[static_cast<size_t>(node_[b])];
      if (first < 0) first = r;
      rep_.push_back(first);
      const uint64_t key = uint64_t(uint32_t(node_[b])) << 32 | uint32_t(tok);
      const auto [it, added] = child_.try_emplace(key, static_cast<int32_t>(first_row_.size()));
      if (added) first_row_.push_back(-1);
      node_[b] = it->second;
    }
}

std::vector<double> SentenceScorer::score(std::span<const std::span<const int32_t>> seqs, const Arena* init,
                                          Arena* final0, std::vector<float>* per_token) {
  const int64_t B = static_cast<int64_t>(seqs.size());
  std::vector<double> sums(seqs.size(), 0.0);
  std::vector<int64_t> len(seqs.size()), first(seqs.size() + 1, 0);  // lengths; each lane's first per_token index
  int64_t longest = 0;
  for (int64_t b = 0; b < B; ++b) {
    len[b] = static_cast<int64_t>(seqs[b].size());
    first[b + 1] = first[b] + len[b];
    longest = std::max(longest, len[b]);
  }
  if (per_token) per_token->assign(static_cast<size_t>(first[B]), 0.0f);
  if (final0) {  // a lane with no token: its state is the one it started from
    for (size_t k = 0; k < final0->table().size(); ++k)
      if (init)
        std::memcpy((*final0)[k].data, (*init)[k].data, s_.hidden * sizeof(float));
      else
        std::memset((*final0)[k].data, 0, s_.hidden * sizeof(float));
  }
  if (longest == 0) return sums;
  int64_t T = std::min(longest, std::max<int64_t>(1, kLogitBudget / (B * s_.head_size())));
  if (max_steps_ > 0) T = std::min(T, max_steps_);
  reserve(T, B);
  start_lanes(B, init);
  x_.resize(static_cast<size_t>(T * B));
  node_.assign(static_cast<size_t>(B), 0);  // every lane at the empty prefix
  first_row_.assign(1, -1);
  child_.clear();
  for (int64_t t0 = 0; t0 < longest; t0 += T) {
    const int64_t Tw = std::min(T, longest - t0);
    select_rows(seqs, len, t0, Tw);
    const int64_t R = static_cast<int64_t>(rows_.size());
    lp_.resize(static_cast<size_t>(R));
    model_score_rows(e_, s_, params_, *ws_, x_.data(), Tw, B, *state_, rows_.data(), R, y_.data(), lp_.data(),
                     rep_.data());
    for (int64_t r = 0; r < R; ++r) {  // rows are time-major: each lane's tokens are added in order
      const int64_t t = rows_[r] / B, b = rows_[r] % B;
      sums[b] += lp_[r];
      if (per_token) (*per_token)[static_cast<size_t>(first[b] + t0 + t)] = lp_[r];
    }
    if (final0 && len[0] > t0 && len[0] <= t0 + Tw) window_state(s_, *ws_, len[0] - t0, B, 0, *final0, 0);
  }
  return sums;
}

}  // namespace manylm
