// io.h — files: checked opening with one-line errors, atomic replacement (temporary file, fsync, rename),
// read-only memory maps, and a content hash. Not a serialization format (see safetensors.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace manylm {

// Fails with a UserError naming `path` if it is missing, unreadable or not a regular file.
void require_regular_file(const std::string& path, std::string_view what);
std::string read_file(const std::string& path, std::string_view what);

// Writes `bytes` to `path` atomically: `path.tmp.PID`, fsync, rename, fsync of the directory.
void write_file_atomic(const std::string& path, std::string_view bytes);
// As write_file_atomic, but never replaces a file: UserError naming `path` if it exists, also when another
// process creates it meanwhile (link(2) of the written temporary; where the file system has no hard links,
// a check before the rename).
void write_file_new(const std::string& path, std::string_view bytes);
// The two halves, for replacing several files together: write and fsync (removed again on failure), and
// rename with an fsync of the directory (on failure `from` stays, so a pair's save can still be completed).
void write_file_synced(const std::string& path, std::string_view bytes);
void rename_synced(const std::string& from, const std::string& to);
// fsync of the directory holding `path`: makes a rename or a new name there durable.
void sync_parent_directory(const std::string& path);

// Where manylm keeps caches (token ids, the GEMM plan): $MANYLM_CACHE, $XDG_CACHE_HOME/manylm,
// ~/.cache/manylm, else /tmp/manylm-cache.
std::string default_cache_dir();

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_directories(const std::string& path);  // mkdir -p; UserError on failure

// An advisory lock (flock(2)) on DIR/.lock, held while the object lives: the one writer of a run directory.
// The file holds the holder's PID. Another process's acquire() fails with one UserError line naming that PID;
// a holder that died releases it (the kernel drops flock locks with the process), so no stale lock remains.
// On NFS, Linux emulates flock with POSIX byte-range locks (needs the lock manager); on Lustre it needs the
// `flock` mount option, else acquire() fails with the file system's error.
class DirLock {
 public:
  DirLock() = default;
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  // `what` starts the error line (e.g. "--resume"); `advice` ends it (what to do instead).
  void acquire(const std::string& dir, const std::string& what, const std::string& advice);
  bool held() const { return fd_ >= 0; }
  void release();

 private:
  int fd_ = -1;
};

// Read-only mapping of a whole file.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept { swap(o); }
  MappedFile& operator=(MappedFile&& o) noexcept {
    swap(o);
    return *this;
  }
  const unsigned char* data() const { return static_cast<const unsigned char*>(ptr_); }
  size_t size() const { return size_; }

 private:
  void swap(MappedFile& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(size_, o.size_);
  }
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// 64-bit FNV-1a over bytes, chainable through `h`.
inline uint64_t fnv1a(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// XXH64 of `n` bytes (Collet's xxHash, 64-bit, with `seed`): ~10 GB/s, for content hashes.
uint64_t xxh64(const void* data, size_t n, uint64_t seed = 0);

// Hash of a file's contents in bounded memory: h = xxh64(block, h) over its 1 MiB blocks (kHashBlock), from
// h = 0 (the last block may be shorter). Readers that hash what they read use the same blocks.
inline constexpr size_t kHashBlock = size_t{1} << 20;
uint64_t hash_file(const std::string& path);
// Reads up to `n` bytes (fewer only at the end of the file); UserError naming `path` on a read error.
size_t read_full(int fd, char* buf, size_t n, const std::string& path);

}  // namespace manylm
