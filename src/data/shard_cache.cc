// shard_cache.cc — see shard_cache.h.
#include "data/shard_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

namespace {

constexpr char kRecordMagic[8] = {'M', 'L', 'M', 'S', 'H', 'R', 'D', '1'};
constexpr int64_t kRacyNs = 2'000'000'000;  // a file modified this close to its reading is read again

struct Record {
  char magic[8];
  FileStamp stamp;
  int64_t read_at_ns;
  uint64_t hash;
};

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  const auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(path), ec);
  return ec ? path : p.string();
}

std::string record_path(const std::string& cache_dir, const std::string& path) {
  const std::string a = absolute_path(path);
  return fmt::format("{}/{:016x}.shard", cache_dir, xxh64(a.data(), a.size(), 0x5eed));
}

}  // namespace

FileStamp stamp_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail("{}: cannot read: {}", path, std::strerror(errno));
  return {static_cast<int64_t>(st.st_size), int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_ino), static_cast<int64_t>(st.st_dev)};
}

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<uint64_t> recorded_hash(const std::string& cache_dir, const std::string& path, const FileStamp& now) {
  if (cache_dir.empty()) return std::nullopt;
  const int fd = ::open(record_path(cache_dir, path).c_str(), O_RDONLY);
  if (fd < 0) return std::nullopt;
  char bytes[sizeof(Record) + 1];  // a record is one Record: a longer file (or a shorter one) is damaged
  const ssize_t n = ::read(fd, bytes, sizeof bytes);
  ::close(fd);
  Record r;
  if (n != static_cast<ssize_t>(sizeof r)) return std::nullopt;
  std::memcpy(&r, bytes, sizeof r);
  if (std::memcmp(r.magic, kRecordMagic, 8) != 0 || !(r.stamp == now) ||
      r.read_at_ns < std::numeric_limits<int64_t>::min() + kRacyNs || now.mtime_ns > r.read_at_ns - kRacyNs)
    return std::nullopt;
  return r.hash;
}

void record_hash(const std::string& cache_dir, const std::string& path, const FileStamp& before, int64_t read_at_ns,
                 uint64_t hash) {
  if (cache_dir.empty()) return;
  Record r;
  std::memcpy(r.magic, kRecordMagic, 8);
  r.stamp = before;
  r.read_at_ns = read_at_ns;
  r.hash = hash;
  try {
    make_directories(cache_dir);
    write_file_atomic(record_path(cache_dir, path), std::string_view(reinterpret_cast<const char*>(&r), sizeof r));
  } catch (const UserError&) {}
}

std::string ids_cache_path(const std::string& cache_dir, const std::string& path, uint64_t vocab_key) {
  const std::string a = absolute_path(path);
  return fmt::format("{}/{:016x}.ids", cache_dir, xxh64(a.data(), a.size(), vocab_key));
}

IdsWriter::IdsWriter(std::string path) : path_(std::move(path)), buf_(kBuf) {
  tmp_ = fmt::format("{}.tmp.{}", path_, ::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("{}: cannot create: {}", tmp_, std::strerror(errno));
  const IdsHeader blank{};
  if (::write(fd_, &blank, sizeof blank) != static_cast<ssize_t>(sizeof blank)) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
    fail("{}: cannot write: {}", tmp_, std::strerror(e));
  }
}

IdsWriter::~IdsWriter() {
  if (fd_ >= 0) {  // not committed: an error on the way
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void IdsWriter::flush() {
  const char* p = reinterpret_cast<const char*>(buf_.data());
  size_t left = n_ * sizeof(int32_t);
  while (left > 0) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("{}: cannot write: {}", tmp_, std::strerror(errno));
    p += w;
    left -= static_cast<size_t>(w);
  }
  count_ += static_cast<int64_t>(n_);
  n_ = 0;
}

void IdsWriter::commit(uint64_t key, int64_t oov, uint64_t content_hash) {
  flush();
  IdsHeader h{};
  std::memcpy(h.magic, kIdsMagic, 8);
  h.key = key;
  h.count = count_;
  h.oov = oov;
  h.content_hash = content_hash;
  if (::pwrite(fd_, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h) || ::fsync(fd_) != 0)
    fail("{}: cannot write: {}", tmp_, std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  try {
    rename_synced(tmp_, path_);
  } catch (...) {
    ::unlink(tmp_.c_str());
    throw;
  }
}

}  // namespace manylm
