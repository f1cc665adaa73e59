// text_reader.cc — see text_reader.h.
#include "data/text_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

TokenMode parse_token_mode(const std::string& s) { return parse_name<TokenMode>(s, "--tokens"); }
const char* token_mode_name(TokenMode m) { return name_of(m); }

namespace {
constexpr size_t kMaxWord = 1 << 16;

// Length of the UTF-8 sequence starting with byte c, 0 if c cannot start one.
int utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}
}  // namespace

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    const int len = utf8_len(c);
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) return false;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if ((c1 & 0xC0) != 0x80) return false;
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xF0 && c1 < 0x90)) return false;  // overlong
    if (c == 0xED && c1 > 0x9F) return false;                                // UTF-16 surrogates
    if (c == 0xF4 && c1 > 0x8F) return false;                                // above U+10FFFF
    for (int k = 2; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

namespace {

// The tokenizer between bytes: a word, or a character, may span blocks of the file.
class Tokenizer {
 public:
  Tokenizer(const std::string& path, TokenMode mode, const std::function<void(std::string_view)>& on_token,
            const std::function<void()>& on_eol)
      : path_(path), mode_(mode), on_token_(on_token), on_eol_(on_eol) {}
  void byte(unsigned char c, int64_t at);  // the byte at offset `at` of the file
  // The block p[0, n) at offset `base`: in word mode a word inside the block is handed on where it lies.
  void block(const unsigned char* p, size_t n, int64_t base);
  int64_t finish();  // at the end of the file; returns the number of tokens

 private:
  void emit(std::string_view token) {
    on_token_(token);
    ++count_;
  }
  void flush_word();
  void lone_cr();  // a CR not followed by LF: a line end
  void word_byte(unsigned char c, int64_t at);
  void char_byte(unsigned char c, int64_t at);

  const std::string& path_;
  const TokenMode mode_;
  const std::function<void(std::string_view)>& on_token_;
  const std::function<void()>& on_eol_;
  std::string word_;        // word mode: the word being read; char mode: a character split across blocks
  bool line_open_ = false;  // word mode: bytes seen since the last '\n'
  bool pending_cr_ = false;
  bool word_ascii_ = true;
  int64_t count_ = 0, word_at_ = 0;
};

void Tokenizer::flush_word() {
  if (word_.empty()) return;
  // Words become vocabulary entries (JSON strings): the text must be UTF-8.
  if (!word_ascii_ && !valid_utf8(word_))
    fail("{}: invalid UTF-8 at offset {} (manylm reads UTF-8 text; convert the file, e.g. with iconv)", path_,
         word_at_);
  word_ascii_ = true;
  emit(word_);
  word_.clear();
}

void Tokenizer::byte(unsigned char c, int64_t at) {
  if (c == 0) fail("{}: NUL byte at offset {}: this looks like a binary file, not text", path_, at);
  if (pending_cr_) {
    pending_cr_ = false;
    if (c != '\n') lone_cr();  // a CR alone (old Mac text) ends a line as LF does; CRLF is one line end
  }
  if (c == '\r') {
    pending_cr_ = true;
    if (mode_ == TokenMode::Word) flush_word();
    return;
  }
  if (mode_ == TokenMode::Word)
    word_byte(c, at);
  else
    char_byte(c, at);
}

// 1 for the bytes a word is made of: all but NUL, the line ends and the separators.
constexpr auto kWordByte = [] {
  std::array<uint8_t, 256> t{};
  t.fill(1);
  for (const unsigned char c : {'\0', '\r', '\n', ' ', '\t', '\v', '\f'}) t[c] = 0;
  return t;
}();

void Tokenizer::block(const unsigned char* p, size_t n, int64_t base) {
  if (mode_ != TokenMode::Word) {
    for (size_t i = 0; i < n; ++i) byte(p[i], base + static_cast<int64_t>(i));
    return;
  }
  for (size_t i = 0; i < n;) {
    if (!kWordByte[p[i]] || pending_cr_ || !word_.empty()) {  // a separator, or a word begun before
      byte(p[i], base + static_cast<int64_t>(i));
      ++i;
      continue;
    }
    size_t j = i;
    unsigned char high = 0;
    while (j < n && kWordByte[p[j]]) high |= p[j++];
    if (j == n) {  // it may go on in the next block
      for (; i < n; ++i) word_byte(p[i], base + static_cast<int64_t>(i));
      return;
    }
    const std::string_view w(reinterpret_cast<const char*>(p + i), j - i);
    const int64_t at = base + static_cast<int64_t>(i);
    if (w.size() > kMaxWord)
      fail("{}: a word longer than {} bytes at offset {}", path_, kMaxWord, at + static_cast<int64_t>(kMaxWord));
    if (high >= 0x80 && !valid_utf8(w))
      fail("{}: invalid UTF-8 at offset {} (manylm reads UTF-8 text; convert the file, e.g. with iconv)", path_, at);
    emit(w);
    line_open_ = true;
    i = j;
  }
}

void Tokenizer::word_byte(unsigned char c, int64_t at) {
  if (c == '\n') {
    flush_word();
    on_eol_();
    line_open_ = false;
  } else if (c == ' ' || c == '\t' || c == '\v' || c == '\f') {
    flush_word();
    line_open_ = true;
  } else {
    if (word_.size() >= kMaxWord) fail("{}: a word longer than {} bytes at offset {}", path_, kMaxWord, at);
    if (word_.empty()) word_at_ = at;
    word_ascii_ = word_ascii_ && c < 0x80;
    word_.push_back(static_cast<char>(c));
    line_open_ = true;
  }
}

void Tokenizer::char_byte(unsigned char c, int64_t at) {
  if (word_.empty()) {
    if (utf8_len(c) == 0)
      fail("{}: invalid UTF-8 byte 0x{:02x} at offset {} (character mode needs UTF-8 text)", path_, c, at);
    word_at_ = at;
    word_ascii_ = c < 0x80;
  } else if ((c & 0xC0) != 0x80) {
    fail("{}: invalid UTF-8 sequence at offset {} (character mode needs UTF-8 text)", path_, at);
  }
  word_.push_back(static_cast<char>(c));
  if (static_cast<int>(word_.size()) == utf8_len(static_cast<unsigned char>(word_[0]))) flush_word();
}

void Tokenizer::lone_cr() {
  if (mode_ == TokenMode::Char) {
    emit("\n");
  } else {  // the word before it was flushed when the CR came
    on_eol_();
    line_open_ = false;
  }
}

int64_t Tokenizer::finish() {
  if (pending_cr_) {  // a CR as the file's last byte: its last line end
    pending_cr_ = false;
    lone_cr();
  }
  if (mode_ == TokenMode::Char) {
    if (!word_.empty()) fail("{}: truncated UTF-8 sequence at the end of the file", path_);
  } else {
    flush_word();
    if (line_open_) on_eol_();
  }
  return count_;
}

}  // namespace

int64_t read_tokens(const std::string& path, TokenMode mode, const std::function<void(std::string_view)>& on_token,
                    const std::function<void()>& on_eol, const ReadHooks& hooks) {
  require_regular_file(path, "corpus");
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Tokenizer tokenizer(path, mode, on_token, on_eol);
  // Whole kHashBlock blocks (the content hash is hash_file's); a smaller file gets a buffer of its size (+1 to see
  // its end at once).
  struct stat st;
  const size_t size = ::fstat(fd, &st) == 0 && st.st_size >= 0 ? static_cast<size_t>(st.st_size) : kHashBlock;
  std::vector<char> buf(std::min(kHashBlock, size + 1));
  uint64_t hash = 0;
  for (int64_t offset = 0;;) {
    const size_t n = read_full(fd, buf.data(), buf.size(), path);
    if (n == 0) break;
    if (hooks.content_hash) hash = xxh64(buf.data(), n, hash);
    if (hooks.bytes_read) hooks.bytes_read->fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
    const auto* p = reinterpret_cast<const unsigned char*>(buf.data());
    size_t i = 0;
    if (offset == 0 && n >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) i = 3;  // byte-order mark
    tokenizer.block(p + i, n - i, offset + static_cast<int64_t>(i));
    offset += static_cast<int64_t>(n);
    if (n < buf.size()) break;
  }
  if (hooks.content_hash) *hooks.content_hash = hash;
  return tokenizer.finish();
}

}  // namespace manylm
