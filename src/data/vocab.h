// vocab.h — the vocabulary: built once from the training file, stored with the model (vocab.json).
// Word mode: one <eos> per line, <unk> for unknown words. Character mode: UTF-8 characters, "\n" is a
// token, <unk> for unseen characters. Ids are ordered by descending count (ties by bytes), so the
// same corpus and options give the same ids on every machine. Not the reader (text_reader.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/text_reader.h"

namespace manylm {

class Vocab {
 public:
  static constexpr const char* kEos = "<eos>";
  static constexpr const char* kUnk = "<unk>";

  Vocab() = default;
  Vocab(TokenMode mode, std::vector<std::string> words, std::vector<int64_t> counts);

  TokenMode mode() const { return mode_; }
  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  const std::string& word(int32_t id) const { return words_[static_cast<size_t>(id)]; }
  int64_t count(int32_t id) const { return counts_[static_cast<size_t>(id)]; }
  int32_t find(std::string_view w) const;  // -1 if absent
  int32_t id(std::string_view w) const {   // <unk> if absent
    int32_t i = find(w);
    return i >= 0 ? i : unk_;
  }
  int32_t eos() const { return eos_; }  // -1 in character mode
  int32_t unk() const { return unk_; }
  // The context a text starts from: <eos> (words), a newline (characters), else <unk>.
  int32_t start() const {
    if (eos_ >= 0) return eos_;
    const int32_t nl = find("\n");
    return nl >= 0 ? nl : unk_;
  }
  uint64_t hash() const;

  std::string to_json() const;
  static Vocab from_json(const std::string& text, const std::string& path);

 private:
  TokenMode mode_ = TokenMode::Word;
  std::vector<std::string> words_;
  std::vector<int64_t> counts_;
  std::unordered_map<std::string, int32_t> index_;
  int32_t eos_ = -1, unk_ = -1;
};

// max_size 0: no limit. Words seen fewer than min_count times map to <unk>.
Vocab build_vocab(const std::string& train_path, TokenMode mode, int64_t max_size, int64_t min_count);
// The same from counts already made: each token's count, and (word mode) the number of line ends.
Vocab vocab_from_counts(std::unordered_map<std::string, int64_t> counts, int64_t eols, TokenMode mode, int64_t max_size,
                        int64_t min_count);

}  // namespace manylm
