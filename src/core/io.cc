// io.cc — see io.h.
#include "core/io.h"

#include <cstdlib>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"

namespace manylm {

void require_regular_file(const std::string& path, std::string_view what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail("{}: cannot open {}: {}", path, what, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("{}: is a directory, expected the {} file", path, what);
  if (!S_ISREG(st.st_mode)) fail("{}: not a regular file (expected the {} file)", path, what);
  if (::access(path.c_str(), R_OK) != 0) fail("{}: cannot read {}: {}", path, what, std::strerror(errno));
}

std::string read_file(const std::string& path, std::string_view what) {
  require_regular_file(path, what);
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open {}: {}", path, what, std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      fail("{}: read error: {}", path, std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

namespace {
// Writes `path`; errors name `shown` (the file the user asked for, not its temporary name).
void write_synced(const std::string& path, std::string_view bytes, const std::string& shown) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail("{}: cannot create: {}", shown, std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      ::unlink(path.c_str());
      fail("{}: write error: {}", shown, std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  int e = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && e == 0) e = errno;  // closed either way
  if (e != 0) {
    ::unlink(path.c_str());
    fail("{}: cannot flush to disk: {}", shown, std::strerror(e));
  }
}

void sync_directory_of(const std::string& path) {  // makes a rename or link durable
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}
}  // namespace

void write_file_synced(const std::string& path, std::string_view bytes) { write_synced(path, bytes, path); }

void sync_parent_directory(const std::string& path) { sync_directory_of(path); }

void rename_synced(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) fail("{}: cannot rename into place: {}", to, std::strerror(errno));
  sync_directory_of(to);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  write_synced(tmp, bytes, path);
  try {
    rename_synced(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

void write_file_new(const std::string& path, std::string_view bytes) {
  if (path_exists(path)) fail("{}: exists; choose another name", path);  // before writing anything
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  write_synced(tmp, bytes, path);
  try {
    if (::link(tmp.c_str(), path.c_str()) == 0) {
      ::unlink(tmp.c_str());
      sync_directory_of(path);
    } else if (errno == EEXIST) {
      fail("{}: exists (created while it was being written); choose another name", path);
    } else if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == EMLINK) {
      if (path_exists(path)) fail("{}: exists; choose another name", path);  // no hard links here
      rename_synced(tmp, path);
    } else {
      fail("{}: cannot create: {}", path, std::strerror(errno));
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_directories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) fail("{}: cannot create directory: {}", path, ec.message());
  if (!is_directory(path)) fail("{}: exists and is not a directory", path);
}

MappedFile::MappedFile(const std::string& path) {
  require_regular_file(path, "mapped");
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st;
  ::fstat(fd, &st);
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    ptr_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (ptr_ == MAP_FAILED) {
      ptr_ = nullptr;
      int e = errno;
      ::close(fd);
      fail("{}: cannot map: {}", path, std::strerror(e));
    }
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (ptr_) ::munmap(ptr_, size_);
}

namespace {
constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full, kP3 = 0x165667B19E3779F9ull,
                   kP4 = 0x85EBCA77C2B2AE63ull, kP5 = 0x27D4EB2F165667C5ull;
inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts (x86-64, aarch64)
}
inline uint32_t load32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t round64(uint64_t acc, uint64_t v) { return rotl(acc + v * kP2, 31) * kP1; }
inline uint64_t merge64(uint64_t h, uint64_t v) { return (h ^ round64(0, v)) * kP1 + kP4; }
}  // namespace

uint64_t xxh64(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* const end = p + n;
  uint64_t h;
  if (n >= 32) {
    uint64_t v1 = seed + kP1 + kP2, v2 = seed + kP2, v3 = seed, v4 = seed - kP1;
    for (; p + 32 <= end; p += 32) {  // (4 independent lanes)
      v1 = round64(v1, load64(p));
      v2 = round64(v2, load64(p + 8));
      v3 = round64(v3, load64(p + 16));
      v4 = round64(v4, load64(p + 24));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge64(merge64(merge64(merge64(h, v1), v2), v3), v4);
  } else {
    h = seed + kP5;
  }
  h += n;
  for (; p + 8 <= end; p += 8) h = rotl(h ^ round64(0, load64(p)), 27) * kP1 + kP4;
  if (p + 4 <= end) {
    h = rotl(h ^ (uint64_t{load32(p)} * kP1), 23) * kP2 + kP3;
    p += 4;
  }
  for (; p < end; ++p) h = rotl(h ^ (*p * kP5), 11) * kP1;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  return h ^ (h >> 32);
}

size_t read_full(int fd, char* buf, size_t n, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("{}: read error: {}", path, std::strerror(errno));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

uint64_t hash_file(const std::string& path) {
  require_regular_file(path, "input");
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;  // whole kHashBlock blocks; a smaller file gets a buffer of its size (+1 to see its end at once)
  const size_t size = ::fstat(fd, &st) == 0 && st.st_size >= 0 ? static_cast<size_t>(st.st_size) : kHashBlock;
  std::vector<char> buf(std::min(kHashBlock, size + 1));
  uint64_t h = 0;
  for (;;) {
    const size_t n = read_full(fd, buf.data(), buf.size(), path);
    if (n == 0) break;
    h = xxh64(buf.data(), n, h);
    if (n < buf.size()) break;
  }
  return h;
}

std::string default_cache_dir() {
  if (const char* c = std::getenv("MANYLM_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/manylm";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/manylm";
  return "/tmp/manylm-cache";
}

DirLock::~DirLock() { release(); }

void DirLock::release() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (removing it would race a new holder)
  fd_ = -1;
}

void DirLock::acquire(const std::string& dir, const std::string& what, const std::string& advice) {
  const std::string path = dir + "/.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create {}: {}", what, path, std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) fail("{}: cannot lock {}: {}", what, path, std::strerror(err));
    std::string pid(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    fail("{}: {} is in use by process {} (a trainer is writing it); {}", what, dir, pid.empty() ? "?" : pid, advice);
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const int err = errno;
    ::close(fd);
    fail("{}: cannot write {}: {}", what, path, std::strerror(err));
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace manylm
