// synthetic.h — token ids for measuring before a corpus is at hand: draws from Zipf(1) over [0, V), p(v) ∝
// 1/(v+1). manylm's ids are in descending count order, so the low ids are the frequent ones as in real text and
// an adaptive softmax's clusters are reached as they would be. Pure function of (V, n, seed): counter-based.
// Not a corpus generator for files (synth_corpus.h writes words; this gives ids).
#pragma once
#include <cstdint>
#include <vector>

namespace manylm {

std::vector<int32_t> zipf_ids(int64_t V, int64_t n, uint64_t seed);

}  // namespace manylm
