// corpus.h — a corpus file as token ids, through an on-disk cache: ids are written once as a binary file
// keyed by (content hash of the text, vocabulary hash, token mode) and memory-mapped on every later run.
// Also the corpus directory layout (train.txt, valid.txt, test.txt) and the data-directory search.
// Not batching (batcher.h).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/io.h"
#include "data/vocab.h"

namespace manylm {

class TokenIds {
 public:
  std::span<const int32_t> ids() const { return {data_, static_cast<size_t>(n_)}; }
  int64_t size() const { return n_; }
  int64_t oov() const { return oov_; }  // tokens that were mapped to <unk> without being "<unk>" in the text
  bool from_cache() const { return from_cache_; }

  // Encodes `path` with `vocab`, using (and filling) `cache_dir` unless it is empty.
  static TokenIds load(const std::string& path, const Vocab& vocab, const std::string& cache_dir);

 private:
  std::vector<int32_t> owned_;
  MappedFile map_;
  const int32_t* data_ = nullptr;
  int64_t n_ = 0, oov_ = 0;
  bool from_cache_ = false;
};

// Resolves the data directory: the given one, else ./data, else ../shared/data.
std::string resolve_data_dir(const std::string& given);

}  // namespace manylm
