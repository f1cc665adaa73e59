// text_reader.cc — see text_reader.h.
#include "data/text_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

TokenMode parse_token_mode(const std::string& s) { return parse_name<TokenMode>(s, "--tokens"); }
const char* token_mode_name(TokenMode m) { return name_of(m); }

namespace {
constexpr size_t kBlock = 1 << 20;
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
  int64_t finish();                        // at the end of the file; returns the number of tokens

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
                    const std::function<void()>& on_eol) {
  require_regular_file(path, "corpus");
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  Tokenizer tokenizer(path, mode, on_token, on_eol);
  struct stat st;  // a file smaller than a block is read with a buffer of its size (+1 to see its end at once)
  const size_t size = ::fstat(fd, &st) == 0 && st.st_size >= 0 ? static_cast<size_t>(st.st_size) : kBlock;
  std::vector<char> buf(std::min(kBlock, size + 1));
  for (int64_t offset = 0;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) fail("{}: read error: {}", path, std::strerror(errno));
    if (n == 0) break;
    size_t i = 0;
    if (offset == 0 && n >= 3 && std::memcmp(buf.data(), "\xEF\xBB\xBF", 3) == 0) i = 3;  // byte-order mark
    for (; i < static_cast<size_t>(n); ++i)
      tokenizer.byte(static_cast<unsigned char>(buf[i]), offset + static_cast<int64_t>(i));
    offset += n;
  }
  return tokenizer.finish();
}

}  // namespace manylm
