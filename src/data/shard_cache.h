// shard_cache.h — what the token-id cache keeps about each text file (a shard), so that a later start trusts
// it without reading the text: a record of the file as it was read (size, mtime, inode, device; when it was
// read; its content hash, core/io.h hash_file's), and per (file, vocabulary) the ids, written as they are
// encoded (a stream of blocks, never all in memory) and memory-mapped. Not the reader (text_reader.h) and
// not the corpus (corpus.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace manylm {

struct FileStamp {
  int64_t size = -1, mtime_ns = 0, ino = 0, dev = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp stamp_of(const std::string& path);  // UserError naming `path` if it cannot be stat'ed
int64_t wall_ns();                            // the real-time clock, as file times are

// The file's content hash from its record in `cache_dir`, if the record is of the file as it is now: same
// stamp, and last modified at least 2 s before it was read (a change in the same tick of a coarse file clock
// would leave the stamp as it was: such a file is read again). nullopt otherwise, or without a cache.
std::optional<uint64_t> recorded_hash(const std::string& cache_dir, const std::string& path, const FileStamp& now);
// Records that `path`, with stamp `before` taken before reading began at `read_at_ns`, hashed to `hash`.
// Errors are ignored (a cache that cannot be written is a cache that misses).
void record_hash(const std::string& cache_dir, const std::string& path, const FileStamp& before, int64_t read_at_ns,
                 uint64_t hash);

// The cache file of `path`'s ids under a vocabulary (`vocab_key`).
std::string ids_cache_path(const std::string& cache_dir, const std::string& path, uint64_t vocab_key);

// The header of an ids cache file; the ids (int32) follow.
struct IdsHeader {
  char magic[8];
  uint64_t key;  // the vocabulary's (hash, token mode)
  int64_t count;
  int64_t oov;
  uint64_t content_hash;  // of the text the ids were encoded from
  uint64_t reserved[3];
};
inline constexpr char kIdsMagic[8] = {'M', 'L', 'M', 'T', 'O', 'K', '3', '\0'};  // 3: per file, content hash

// Writes ids to `path` block by block: a temporary file, then header, fsync and rename on commit().
// UserError on failure (the temporary is removed).
class IdsWriter {
 public:
  explicit IdsWriter(std::string path);
  ~IdsWriter();
  IdsWriter(const IdsWriter&) = delete;
  IdsWriter& operator=(const IdsWriter&) = delete;
  void push(int32_t id) {
    buf_[n_++] = id;
    if (n_ == kBuf) flush();
  }
  void commit(uint64_t key, int64_t oov, uint64_t content_hash);

 private:
  static constexpr size_t kBuf = 1 << 16;
  void flush();
  std::string path_, tmp_;
  int fd_ = -1;
  std::vector<int32_t> buf_;
  size_t n_ = 0;
  int64_t count_ = 0;
};

}  // namespace manylm
