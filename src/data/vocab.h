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
#include "data/word_table.h"

namespace manylm {

// Hashing for maps of words looked up by string_view without a copy (heterogeneous lookup).
struct WordHash {
  using is_transparent = void;
  size_t operator()(std::string_view w) const { return std::hash<std::string_view>{}(w); }
};
template <class V>
using WordMap = std::unordered_map<std::string, V, WordHash, std::equal_to<>>;

class Vocab {
 public:
  static constexpr const char* kEos = "<eos>";
  static constexpr const char* kUnk = "<unk>";

  Vocab() = default;
  // `unk_word`, `eos_word`: the words that are the unknown word and the line end (a fixed vocabulary file may
  // call them <UNK> and </S>).
  Vocab(TokenMode mode, std::vector<std::string> words, std::vector<int64_t> counts, std::string unk_word = kUnk,
        std::string eos_word = kEos);

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
  const std::string& unk_word() const { return unk_word_; }
  const std::string& eos_word() const { return eos_word_; }
  uint64_t hash() const;
  // Where a fixed vocabulary came from (--vocab-file and its format), recorded in vocab.json; empty if counted.
  void set_source(std::string file, std::string format) {
    source_file_ = std::move(file);
    source_format_ = std::move(format);
  }
  const std::string& source_file() const { return source_file_; }

  std::string to_json() const;
  static Vocab from_json(const std::string& text, const std::string& path);

 private:
  TokenMode mode_ = TokenMode::Word;
  std::vector<std::string> words_;
  std::vector<int64_t> counts_;
  WordTable index_;  // word → id
  std::string unk_word_ = kUnk, eos_word_ = kEos;
  std::string source_file_, source_format_;
  int32_t eos_ = -1, unk_ = -1;
};

// max_size 0: no limit. Words seen fewer than min_count times map to <unk>.
Vocab build_vocab(const std::string& train_path, TokenMode mode, int64_t max_size, int64_t min_count);
// The same from counts already made: each token's count, and (word mode) the number of line ends.
// The same from (word, count) pairs in any order that include <unk> and (word mode) <eos> with the line ends.
Vocab vocab_from_items(std::vector<std::pair<std::string, int64_t>> items, TokenMode mode, int64_t max_size,
                       int64_t min_count);
Vocab vocab_from_counts(WordMap<int64_t> counts, int64_t eols, TokenMode mode, int64_t max_size, int64_t min_count);

}  // namespace manylm
