// synth_corpus.cc — see synth_corpus.h: word names, the generator's tables, sampling a chunk of text, and the
// generator's entropies. Writing the files: synth_write.cc.
#include "data/synth_corpus.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"

namespace manylm {

namespace {
constexpr char kConsonants[] = "bdfghjklmnprstvz";
constexpr char kVowels[] = "aeiou";
constexpr int64_t kSyllables = 80;
// The first id written with 1, 2, 3 and 4 syllables, and the end of the 4-syllable names.
constexpr int64_t kNameStart[] = {0, 80, 6'480, 518'480, 41'478'480};
static_assert(kSynthMaxVocab <= kNameStart[4], "every name fits 8 characters");
static_assert(std::endian::native == std::endian::little, "packed names are written low byte first");

// Philox streams: a chunk's is (file << 32 | chunk); the model's own have the top bit set.
constexpr uint64_t kLayoutStream = uint64_t{1} << 63, kThetaStream = kLayoutStream | (uint64_t{1} << 40);
constexpr uint64_t kLengthBlocks = uint64_t{1} << 40;  // a chunk's sentence lengths: its Philox blocks from here
constexpr int64_t kFirstBlock = 16, kMaxBlock = 4096;

// Word v's name packed low byte first (at most 8 characters), and its length.
inline uint64_t packed_name(int64_t v, int* len) {
  int s = 1;
  while (v >= kNameStart[s]) ++s;
  int64_t n = v - kNameStart[s - 1];
  uint64_t out = 0;
  for (int i = s - 1; i >= 0; --i) {
    const int64_t d = n % kSyllables;
    n /= kSyllables;
    const uint64_t syllable = static_cast<uint64_t>(static_cast<uint8_t>(kConsonants[d / 5])) |
                              static_cast<uint64_t>(static_cast<uint8_t>(kVowels[d % 5])) << 8;
    out |= syllable << (16 * i);
  }
  *len = 2 * s;
  return out;
}

inline double unit32(uint32_t x) { return static_cast<double>(x) * (1.0 / 4294967296.0); }
inline double unit53(uint32_t hi, uint32_t lo) {
  return (static_cast<double>(hi >> 5) * 67108864.0 + static_cast<double>(lo >> 6)) * (1.0 / 9007199254740992.0);
}
inline double plogp(double p) { return p > 0 ? -p * std::log(p) : 0.0; }  // −p ln p

// The map weights q_k ∝ 1/(k+1), k < kMaps.
double map_weight(int k) {
  double s = 0;
  for (int i = 0; i < SynthModel::kMaps; ++i) s += 1.0 / (i + 1);
  return 1.0 / (k + 1) / s;
}

// The lengths of a chunk's sentences, words only, their tokens (length + 1 each) summing to `tokens` (≥ 2): uniform
// in [kMinLength, kMaxLength], the last one taking what would leave less than a shortest sentence.
std::vector<int32_t> sentence_lengths(const CounterRng& rng, int64_t tokens) {
  constexpr int64_t lo = SynthModel::kMinLength, span = SynthModel::kMaxLength - SynthModel::kMinLength + 1;
  std::vector<int32_t> out;
  Philox4 block{};
  for (int64_t r = tokens, i = 0; r > 0; ++i) {
    if (i % 4 == 0) block = rng.block(kLengthBlocks + static_cast<uint64_t>(i / 4));
    int64_t len = lo + static_cast<int64_t>((static_cast<uint64_t>(block[i % 4]) * span) >> 32);
    if (r - (len + 1) < lo + 1) len = r - 1;
    out.push_back(static_cast<int32_t>(len));
    r -= len + 1;
  }
  return out;
}
}  // namespace

std::string synth_word(int64_t v) {
  int len = 0;
  const uint64_t name = packed_name(v, &len);
  std::string s(8, '\0');
  std::memcpy(s.data(), &name, 8);
  s.resize(static_cast<size_t>(len));
  return s;
}

int64_t synth_word_id(std::string_view name) {
  if (name.empty() || name.size() % 2 != 0 || name.size() > 8) return -1;
  int64_t n = 0;
  for (size_t i = 0; i < name.size(); i += 2) {
    const char* c = name[i] ? std::strchr(kConsonants, name[i]) : nullptr;
    const char* v = name[i + 1] ? std::strchr(kVowels, name[i + 1]) : nullptr;
    if (!c || !v) return -1;
    n = n * kSyllables + (c - kConsonants) * 5 + (v - kVowels);
  }
  return kNameStart[name.size() / 2 - 1] + n;
}

int64_t synth_heldout_tokens(int64_t tokens) { return std::clamp<int64_t>(tokens / 20, 1'000, 1'000'000); }

void check_synth_spec(const SynthSpec& spec) {
  if (spec.vocab < 1 || spec.vocab > kSynthMaxVocab)
    fail("--vocab: the number of word types must be between 1 and {} (got {})", kSynthMaxVocab, spec.vocab);
  if (spec.shards < 1 || spec.shards > kSynthMaxShards)
    fail("--shards: must be between 1 and {} (got {})", kSynthMaxShards, spec.shards);
  if (spec.tokens < 2 * spec.shards)
    fail("--tokens: {} is too few for {} shards (at least 2 tokens per shard)", spec.tokens, spec.shards);
  if (spec.tokens > 10'000'000'000'000) fail("--tokens: at most 10000000000000 (got {})", spec.tokens);
}

SynthModel::SynthModel(int64_t vocab, uint64_t seed) : V_(vocab), seed_(seed) {
  check_synth_spec({2, vocab, 1, seed});
  harmonic_ = 0;
  for (int64_t v = V_ - 1; v >= 0; --v) harmonic_ += 1.0 / static_cast<double>(v + 1);  // small terms first
  follow_threshold_ = static_cast<uint32_t>(kFollow * 4294967296.0);
  double cum = 0;
  for (int k = 0; k < kMaps; ++k) {
    cum += map_weight(k);
    map_threshold_[k] = static_cast<uint32_t>(std::min(4294967295.0, cum * 4294967296.0));
  }
  build_blocks();
  build_alias();
}

int64_t SynthModel::block_of(int64_t w) const {
  const int64_t b = w < kFirstBlock ? 0
                    : w < kMaxBlock ? std::bit_width(static_cast<uint64_t>(w)) - 4
                                    : 9 + (w - kMaxBlock) / kMaxBlock;
  return std::min(b, static_cast<int64_t>(block_start_.size()) - 2);  // the last block may hold a short tail
}

void SynthModel::build_blocks() {
  block_start_ = {0};
  for (int64_t s = 0; s < V_;) {  // [0, 16), [16, 32), [32, 64), … [2048, 4096), then 4096 each
    const int64_t size = s == 0 ? kFirstBlock : std::min(s, kMaxBlock);
    s = V_ - s <= size + size / 2 ? V_ : s + size;  // a short tail joins the last block
    block_start_.push_back(s);
  }
  const int64_t blocks = static_cast<int64_t>(block_start_.size()) - 1;
  pieces_.resize(static_cast<size_t>(V_));
  word_pieces_.resize(static_cast<size_t>(V_));
  theta_.resize(static_cast<size_t>(blocks * kMaps));
  parallel_for(blocks, 2, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) layout_block(b);
  });
}

void SynthModel::layout_block(int64_t b) {
  const int64_t s = block_start_[b], n = block_start_[b + 1] - s;
  std::vector<int32_t> words(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) words[static_cast<size_t>(i)] = static_cast<int32_t>(s + i);
  const CounterRng rng{seed_, kLayoutStream + static_cast<uint64_t>(b)};
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher–Yates
    const uint32_t r = rng.block(static_cast<uint64_t>(i) / 4)[static_cast<size_t>(i % 4)];
    std::swap(words[static_cast<size_t>(i)], words[(static_cast<uint64_t>(r) * static_cast<uint64_t>(i + 1)) >> 32]);
  }
  double mass = 0, acc = 0;
  for (const int32_t w : words) mass += unigram(w);
  Piece* piece = pieces_.data() + s;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t w = words[static_cast<size_t>(i)];
    piece[i] = {acc / mass, w, 0};
    acc += unigram(w);
  }
  for (int64_t i = 0, j = 0; i < n; ++i) {  // the guide: the last piece starting at or before i / n
    while (j + 1 < n && piece[j + 1].start <= static_cast<double>(i) / static_cast<double>(n)) ++j;
    piece[i].guide = static_cast<int32_t>(j);
  }
  for (int64_t i = 0; i < n; ++i)
    word_pieces_[static_cast<size_t>(piece[i].word)] = {piece[i].start, piece_end(s + i, b) - piece[i].start};
  // A rotation by θ in [ℓ, 1 − ℓ], ℓ the block's longest piece, moves no piece onto itself: no word is its
  // own successor (unless one word holds half the block).
  double longest = 0;
  for (int64_t i = 0; i < n; ++i) longest = std::max(longest, word_pieces_[static_cast<size_t>(s + i)].len);
  if (longest > 0.5) longest = 0;
  const CounterRng theta{seed_, kThetaStream};
  for (int k = 0; k < kMaps; ++k) {
    const Philox4 t = theta.block(static_cast<uint64_t>(b * kMaps + k));
    theta_[static_cast<size_t>(b * kMaps + k)] = longest + (1 - 2 * longest) * unit53(t[0], t[1]);
  }
}

void SynthModel::build_alias() {  // Vose's construction of Walker's alias table for z
  const size_t n = static_cast<size_t>(V_);
  std::vector<double> p(n);
  std::vector<int32_t> small, large;
  for (size_t v = 0; v < n; ++v) {
    p[v] = unigram(static_cast<int64_t>(v)) * static_cast<double>(V_);
    (p[v] < 1.0 ? small : large).push_back(static_cast<int32_t>(v));
  }
  alias_.resize(n);
  while (!small.empty() && !large.empty()) {
    const int32_t s = small.back(), l = large.back();
    small.pop_back();
    alias_[static_cast<size_t>(s)] = {static_cast<uint32_t>(p[static_cast<size_t>(s)] * 4294967296.0), l};
    p[static_cast<size_t>(l)] = (p[static_cast<size_t>(l)] + p[static_cast<size_t>(s)]) - 1.0;
    if (p[static_cast<size_t>(l)] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (const auto* rest : {&small, &large})  // probability 1 up to rounding: the word itself either way
    for (const int32_t v : *rest) alias_[static_cast<size_t>(v)] = {0xFFFFFFFFu, v};
}

int64_t SynthModel::alias_index(uint32_t hi, uint32_t lo) const {
  const uint64_t r = static_cast<uint64_t>(hi) << 32 | lo;
  return static_cast<int64_t>((static_cast<unsigned __int128>(r) * static_cast<uint64_t>(V_)) >> 64);
}

int32_t SynthModel::draw(uint32_t keep, uint32_t hi, uint32_t lo) const {
  const int64_t i = alias_index(hi, lo);
  const Alias a = alias_[static_cast<size_t>(i)];
  return keep < a.threshold ? static_cast<int32_t>(i) : a.alias;
}

int32_t SynthModel::follow(int32_t w, uint32_t map, uint32_t at) const {
  int k = 0;
  while (k < kMaps - 1 && map >= map_threshold_[k]) ++k;
  const int64_t b = block_of(w), s = block_start_[b], n = block_start_[b + 1] - s;
  const WordPiece p = word_pieces_[static_cast<size_t>(w)];
  double y = p.lo + p.len * unit32(at) + theta_[static_cast<size_t>(b * kMaps + k)];
  if (y >= 1.0) y -= 1.0;
  return pieces_[static_cast<size_t>(s + piece_at(pieces_.data() + s, n, y))].word;
}

int64_t SynthModel::piece_at(const Piece* piece, int64_t n, double y) {
  int64_t j = piece[std::min(n - 1, static_cast<int64_t>(y * static_cast<double>(n)))].guide;
  while (j > 0 && piece[j].start > y) --j;  // only if y · n rounded up
  while (j + 1 < n && piece[j + 1].start <= y) ++j;
  return j;
}

std::vector<std::pair<int32_t, double>> SynthModel::successors(int32_t w) const {
  std::vector<std::pair<int32_t, double>> out;
  const int64_t b = block_of(w), s = block_start_[b], e = block_start_[b + 1];
  const WordPiece p = word_pieces_[static_cast<size_t>(w)];
  auto start = [&](int64_t j) { return pieces_[static_cast<size_t>(j)].start; };
  for (int k = 0; k < kMaps; ++k) {
    double a = p.lo + theta_[static_cast<size_t>(b * kMaps + k)];
    if (a >= 1.0) a -= 1.0;
    // The rotated piece [a, a + len), wrapped at the end of the block's segment.
    const std::pair<double, double> parts[2] = {{a, std::min(1.0, a + p.len)}, {0.0, a + p.len - 1.0}};
    for (const auto& [x0, x1] : parts) {
      if (x1 <= x0) continue;
      for (int64_t j = s + piece_at(pieces_.data() + s, e - s, x0); j < e && start(j) < x1; ++j) {
        const double overlap = std::min(x1, piece_end(j, b)) - std::max(x0, start(j));
        if (overlap > 0) out.emplace_back(pieces_[static_cast<size_t>(j)].word, map_weight(k) * overlap / p.len);
      }
    }
  }
  std::sort(out.begin(), out.end());
  size_t m = 0;
  for (size_t i = 0; i < out.size(); ++i)
    if (m > 0 && out[m - 1].first == out[i].first)
      out[m - 1].second += out[i].second;
    else
      out[m++] = out[i];
  out.resize(m);
  return out;
}

double SynthModel::next_prob(int32_t prev, int32_t next) const {
  double s = 0;
  for (const auto& [v, q] : successors(prev))
    if (v == next) s = q;
  return (1 - kFollow) * unigram(next) + kFollow * s;
}

double SynthModel::block_entropy(int64_t b, double base) const {
  // H(next | w) = Σ_v f((1−α)z_v + α s_v) with f(p) = −p ln p: `base` = Σ_v f((1−α)z_v), corrected where s_v > 0.
  double sum = 0;
  for (int64_t w = block_start_[b]; w < block_start_[b + 1]; ++w) {
    double h = base;
    for (const auto& [v, q] : successors(static_cast<int32_t>(w))) {
      const double u = (1 - kFollow) * unigram(v);
      h += plogp(u + kFollow * q) - plogp(u);
    }
    sum += unigram(w) * h;
  }
  return sum;
}

SynthEntropy SynthModel::entropy() const {
  double hz = 0, base = 0;
  for (int64_t v = V_ - 1; v >= 0; --v) {
    hz += plogp(unigram(v));
    base += plogp((1 - kFollow) * unigram(v));
  }
  const int64_t blocks = static_cast<int64_t>(block_start_.size()) - 1;
  std::vector<double> part(static_cast<size_t>(blocks));
  parallel_for(blocks, 2, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) part[static_cast<size_t>(b)] = block_entropy(b, base);
  });
  double hc = 0;  // Σ_w z(w) H(next word | w), in block order
  for (const double x : part) hc += x;
  const double L = (kMinLength + kMaxLength) / 2.0, e = 1 / (L + 1), eps = 1 / L;
  SynthEntropy h;
  h.unigram = plogp(e) + plogp(1 - e) + (1 - e) * hz;
  // Per sentence: its first word (from z), L word positions each followed by <eos> with probability 1/L (bigram)
  // or after a length drawn uniformly (rate), and L − 1 words drawn given the word before.
  h.bigram = (hz + L * (plogp(eps) + plogp(1 - eps)) + (L - 1) * hc) / (L + 1);
  h.rate = (hz + (L - 1) * hc + std::log(kMaxLength - kMinLength + 1.0)) / (L + 1);
  return h;
}

double SynthModel::mean_word_bytes() const {
  double s = 0;
  for (int64_t v = V_ - 1; v >= 0; --v) {
    int len = 0;
    packed_name(v, &len);
    s += unigram(v) * (len + 1);
  }
  return s;
}

std::pair<int64_t, int64_t> SynthModel::write_chunk(uint64_t file, uint64_t chunk, int64_t tokens, int64_t plant0,
                                                    int64_t plant1, std::string& out, uint64_t* seen) const {
  const CounterRng rng{seed_, file << 32 | chunk};
  const std::vector<int32_t> lengths = sentence_lengths(rng, tokens);
  const int64_t lines = static_cast<int64_t>(lengths.size()), words = tokens - lines;
  // Planted word j at word ((2j + 1)·words) / (2·planted): evenly spaced, distinct while planted ≤ words.
  const int64_t planted = std::min(plant1 - plant0, words);
  auto plant_at = [&](int64_t j) { return j < planted ? (2 * j + 1) * words / (2 * planted) : INT64_MAX; };
  int64_t j = 0, next_plant = plant_at(0);
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(words) * 9 + 8);  // a name is at most 8 bytes, then ' ' or '\n'
  char* p = out.data() + at;
  constexpr int64_t kBatch = 512, kAhead = 16;  // random words per batch; alias entries fetched that far ahead
  uint32_t r[4 * kBatch];
  int64_t wi = 0;
  int32_t prev = 0;
  for (const int32_t len : lengths)
    for (int32_t t = 0; t < len; ++t, ++wi) {
      if (wi % kBatch == 0)
        philox_blocks(rng, static_cast<uint64_t>(wi), static_cast<uint64_t>(std::min(kBatch, words - wi)), r);
      const uint32_t* x = r + 4 * (wi % kBatch);  // x[0]: follow or draw, then map and point, or the alias draw
      if (wi % kBatch + kAhead < kBatch) __builtin_prefetch(&alias_[alias_index(x[4 * kAhead + 2], x[4 * kAhead + 3])]);
      int32_t w = t > 0 && x[0] < follow_threshold_ ? follow(prev, x[2], x[1]) : draw(x[1], x[2], x[3]);
      if (wi == next_plant) {
        w = static_cast<int32_t>(plant0 + j);
        next_plant = plant_at(++j);
      }
      if (seen) seen[w >> 6] |= uint64_t{1} << (w & 63);
      int n = 0;
      const uint64_t name = packed_name(w, &n);
      std::memcpy(p, &name, 8);
      p += n;
      *p++ = t + 1 < len ? ' ' : '\n';
      prev = w;
    }
  out.resize(static_cast<size_t>(p - out.data()));
  return {words, lines};
}

}  // namespace manylm
