// corpus.h — a corpus as token ids: one text file (TokenIds) or many (CorpusIds: the shards of a directory or
// a glob, in sorted order), each encoded once into its own on-disk cache (data/shard_cache.h: keyed by the
// file and the vocabulary, trusted on a later start from the file's size, mtime and inode without reading
// the text) and memory-mapped; shards are encoded in parallel, each streamed straight to its cache file, so
// memory does not grow with the corpus. Also the vocabulary counted over all shards in one parallel
// streaming pass (cached by the shards' content hashes), what names a corpus (a file, a directory, a glob),
// and the data-directory search. Not batching (batcher.h).
#pragma once
#include <atomic>
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
  uint64_t content_hash() const { return hash_; }
  int64_t bytes() const { return bytes_; }  // of the text

  // Encodes `path` with `vocab`, using (and filling) `cache_dir` unless it is empty (then the ids are held in
  // memory). `bytes_read` (may be null) counts the text read, for a progress line.
  static TokenIds load(const std::string& path, const Vocab& vocab, const std::string& cache_dir,
                       std::atomic<int64_t>* bytes_read = nullptr);

 private:
  bool map_cached(const std::string& cache_path, uint64_t key, uint64_t hash, const Vocab& vocab);
  void encode(const std::string& path, const Vocab& vocab, const std::string& cache_path, uint64_t key,
              std::atomic<int64_t>* bytes_read);
  std::vector<int32_t> owned_;
  MappedFile map_;
  const int32_t* data_ = nullptr;
  int64_t n_ = 0, oov_ = 0, bytes_ = 0;
  uint64_t hash_ = 0;
  bool from_cache_ = false;
};

// The ids of a corpus of one or more files, as one piece per file in file order.
class CorpusIds {
 public:
  const std::vector<std::span<const int32_t>>& pieces() const { return pieces_; }
  int64_t size() const { return size_; }
  int64_t oov() const { return oov_; }
  size_t shards() const { return parts_.size(); }
  const TokenIds& shard(size_t i) const { return parts_[i]; }
  const std::string& file(size_t i) const { return files_[i]; }
  bool from_cache() const;  // every shard
  size_t encoded() const;   // shards encoded by this load
  // The files, their sizes and content hashes: {"files": [{"name", "bytes", "hash"}...]} (names as given).
  std::string fingerprint() const;

  // Loads every file on the team's threads (one file per thread at a time), with a progress line on stderr
  // for a long pass (`what` names it). UserError naming the first bad file.
  static CorpusIds load(const std::vector<std::string>& files, const Vocab& vocab, const std::string& cache_dir,
                        const std::string& what = "");

 private:
  std::vector<std::string> files_;
  std::vector<TokenIds> parts_;
  std::vector<std::span<const int32_t>> pieces_;
  int64_t size_ = 0, oov_ = 0;
};

// The vocabulary of `files` counted in one streaming pass on the team's threads (each thread its own counts,
// merged), or read from `cache_dir` when the same files (by content hash) were counted with the same
// settings before. max_size, min_count: as build_vocab. UserError for an empty corpus.
Vocab count_vocabulary(const std::vector<std::string>& files, TokenMode mode, int64_t max_size, int64_t min_count,
                       const std::string& cache_dir);

// What a corpus option names: a file; a directory (its regular files not starting with '.', sorted); or a
// glob (a pattern with * ? or [ that is not itself a file; its regular files, sorted). UserError naming
// `option` and the path when nothing is there.
std::vector<std::string> corpus_paths(const std::string& spec, const std::string& option);

// Resolves the data directory: the given one, else ./data, else ../shared/data.
std::string resolve_data_dir(const std::string& given);

}  // namespace manylm
