// synth_corpus.h — the generator behind `manylm corpus synth`: a seeded word corpus with Zipf(1) word
// frequencies and a sparse bigram structure a model can learn, written as training shards plus valid.txt and
// test.txt. Ids are ranks: word 0 is the most frequent. The model:
//  - unigram z(v) = 1 / ((v + 1) · H_V) over V word types; the first word of a sentence is drawn from z;
//  - every later word: with probability kFollow a successor of the word before it, else a fresh draw from z;
//  - successors: the ids form blocks of similar frequency ([0, 16), [16, 32), … doubling up to 4096 ids, then
//    4096 each); a block lays its words out on a segment in a seeded random order, each word a piece as long as
//    its probability. Map k (chosen with weight ∝ 1/(k+1), k < kMaps) rotates the segment by a seeded offset
//    (at least the longest piece, so no word follows itself, unless one word holds half its block), and the
//    successor is the word under a uniform point of the previous word's piece after the rotation. A rotation
//    preserves length, so every word position's marginal stays exactly z; a word has about 1–3 successors per
//    map (the top block's words more);
//  - sentence lengths uniform in [kMinLength, kMaxLength] words, each sentence ended by a newline (<eos>).
// Word v is written as a pronounceable name: v in bijective base 80, one consonant-vowel syllable per digit
// (ba, be, …, zu, baba, …), so frequent words are short. Types the text would likely miss (expected fewer than
// kPlantBelow times) are planted once each, evenly spread over the training shards: every type appears from
// 3·V tokens on.
// Deterministic: chunk c of file f is a pure function of (seed, V, f, c) (counter-based Philox), the same for
// any thread count. Not a reader (text_reader.h), not the benches' id sampler (synthetic.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace manylm {

// The name of word v (v < synth_max_vocab()), and the word a name stands for (-1 if it is none).
std::string synth_word(int64_t v);
int64_t synth_word_id(std::string_view name);

struct SynthSpec {
  int64_t tokens = 0;  // training tokens as `train` counts them: words plus one <eos> per line
  int64_t vocab = 0;   // word types V
  int64_t shards = 1;
  uint64_t seed = 1;
};
inline constexpr int64_t kSynthMaxVocab = 10'000'000;
inline constexpr int64_t kSynthMaxShards = 100'000;  // train/00000.txt … train/99999.txt
// valid.txt and test.txt each hold N/20 tokens, at least 1,000 and at most 1,000,000.
int64_t synth_heldout_tokens(int64_t tokens);
// UserError naming the option for a spec out of range (--tokens, --vocab, --shards).
void check_synth_spec(const SynthSpec& spec);

// Entropies in nats per token of the text as `train` reads it (<eos> included), of the generator's distribution
// (the planted words and the sentences cut at chunk ends left out, both well under 1% of a corpus of ≥ 20·V).
struct SynthEntropy {
  double unigram;  // of the token marginal: what a unigram model achieves, and a model must beat
  double bigram;   // given the previous token: the best bigram model
  double rate;     // the generator's entropy rate (a model that also tracks sentence length): the floor
};

class SynthModel {
 public:
  static constexpr double kFollow = 0.5;
  static constexpr int kMaps = 4;
  static constexpr int kMinLength = 2, kMaxLength = 40;
  static constexpr double kPlantBelow = 40;

  SynthModel(int64_t vocab, uint64_t seed);  // the tables: O(V) memory (40 bytes per type)
  int64_t vocab() const { return V_; }
  double unigram(int64_t v) const { return 1.0 / (static_cast<double>(v + 1) * harmonic_); }
  // The successors' part of word w's next-word distribution: (word, probability) by id, summing to 1.
  std::vector<std::pair<int32_t, double>> successors(int32_t w) const;
  // p(next | prev) of the words of a sentence: (1 − kFollow)·z(next) + kFollow·successors(prev)[next].
  double next_prob(int32_t prev, int32_t next) const;
  SynthEntropy entropy() const;    // parallel over blocks, summed in block order: the same for any thread count
  double mean_word_bytes() const;  // expected bytes of a word in the text, its separator included

  // Appends the text of chunk `chunk` of file `file`: `tokens` ≥ 2 tokens (words plus newlines), the words
  // [plant0, plant1) planted at evenly spaced word positions; sets bit w of `seen` (if given) for each word w.
  // Returns {words, lines}.
  std::pair<int64_t, int64_t> write_chunk(uint64_t file, uint64_t chunk, int64_t tokens, int64_t plant0, int64_t plant1,
                                          std::string& out, uint64_t* seen = nullptr) const;

 private:
  struct Alias {
    uint32_t threshold;
    int32_t alias;
  };
  struct Piece {    // a position of a block's segment
    double start;   // where its piece starts, as a fraction of the block's mass
    int32_t word;   // whose piece it is
    int32_t guide;  // the piece (offset in the block) under the point (this offset) / (block size)
  };
  struct WordPiece {  // a word's piece, as fractions of its block's mass
    double lo, len;
  };
  int64_t block_of(int64_t w) const;
  int64_t alias_index(uint32_t hi, uint32_t lo) const;               // uniform in [0, V) from 64 random bits
  int32_t draw(uint32_t keep, uint32_t hi, uint32_t lo) const;       // from z: Walker's alias method
  int32_t follow(int32_t w, uint32_t map, uint32_t at) const;        // a successor of w
  static int64_t piece_at(const Piece* block, int64_t n, double y);  // the piece (of n) under point y of a block
  double piece_end(int64_t j, int64_t b) const { return j + 1 < block_start_[b + 1] ? pieces_[j + 1].start : 1.0; }
  void build_blocks();
  void layout_block(int64_t b);  // block b's seeded order of its words, their pieces, its rotations
  void build_alias();
  double block_entropy(int64_t b, double base) const;  // Σ over the block's words w of z(w)·H(next word | w)

  int64_t V_;
  uint64_t seed_;
  double harmonic_;
  std::vector<Alias> alias_;            // (V)
  std::vector<int64_t> block_start_;    // (blocks + 1)
  std::vector<Piece> pieces_;           // (V) each block's words in its seeded order
  std::vector<WordPiece> word_pieces_;  // (V) by word
  std::vector<double> theta_;           // (blocks, kMaps) rotations, fractions of the block
  uint32_t follow_threshold_;
  uint32_t map_threshold_[kMaps];
};

// What write_synth_corpus wrote. Index 0: train (all shards), 1: valid, 2: test.
struct SynthSummary {
  int64_t tokens[3], words[3], lines[3], bytes[3];
  int64_t planted;  // types planted once in the training shards (the rarest ones)
  int64_t types;    // types that occur in the training shards, counted while writing
};

// Writes DIR/train/NNNNN.txt (spec.shards files), DIR/valid.txt and DIR/test.txt, chunks generated and written
// in parallel on the team's threads. Everything goes into DIR.tmp.PID first, fsynced and renamed to DIR at the
// end (removed on failure), so DIR appears whole or not at all. UserError (naming --out or the file) if DIR
// exists and is not an empty directory, if its file system lacks the space, or on a write error.
SynthSummary write_synth_corpus(const SynthModel& model, const SynthSpec& spec, const std::string& dir);

}  // namespace manylm
