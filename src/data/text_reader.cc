// text_reader.cc — see text_reader.h.
#include "data/text_reader.h"

#include <fcntl.h>
#include <unistd.h>

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
    if (c == 0xED && c1 > 0x9F) return false;                                 // UTF-16 surrogates
    if (c == 0xF4 && c1 > 0x8F) return false;                                 // above U+10FFFF
    for (int k = 2; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

int64_t read_tokens(const std::string& path, TokenMode mode, const std::function<void(std::string_view)>& on_token,
                    const std::function<void()>& on_eol) {
  require_regular_file(path, "corpus");
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::vector<char> buf(kBlock);
  std::string word;      // word mode: the word being read; char mode: a character split across blocks
  bool line_open = false;  // word mode: bytes seen since the last '\n'
  bool pending_cr = false;
  int64_t offset = 0, count = 0, word_at = 0;
  bool first = true, word_ascii = true;
  auto flush_word = [&] {
    if (!word.empty()) {
      // Words become vocabulary entries (JSON strings): the text must be UTF-8.
      if (!word_ascii && !valid_utf8(word))
        fail("{}: invalid UTF-8 at offset {} (manylm reads UTF-8 text; convert the file, e.g. with iconv)", path, word_at);
      word_ascii = true;
      on_token(word);
      ++count;
      word.clear();
    }
  };
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) fail("{}: read error: {}", path, std::strerror(errno));
    if (n == 0) break;
    size_t i = 0;
    if (first) {
      first = false;
      if (n >= 3 && std::memcmp(buf.data(), "\xEF\xBB\xBF", 3) == 0) i = 3;  // byte-order mark
    }
    for (; i < static_cast<size_t>(n); ++i) {
      const unsigned char c = static_cast<unsigned char>(buf[i]);
      const int64_t at = offset + static_cast<int64_t>(i);
      if (c == 0) fail("{}: NUL byte at offset {}: this looks like a binary file, not text", path, at);
      if (pending_cr) {
        pending_cr = false;
        if (c != '\n' && mode == TokenMode::Char) {  // a lone CR is kept as a character
          on_token("\r");
          ++count;
        }
      }
      if (c == '\r') {
        pending_cr = true;
        if (mode == TokenMode::Word) flush_word();
        continue;
      }
      if (mode == TokenMode::Word) {
        if (c == '\n') {
          flush_word();
          on_eol();
          line_open = false;
        } else if (c == ' ' || c == '\t' || c == '\v' || c == '\f') {
          flush_word();
          line_open = true;
        } else {
          if (word.size() >= kMaxWord) fail("{}: a word longer than {} bytes at offset {}", path, kMaxWord, at);
          if (word.empty()) word_at = at;
          word_ascii = word_ascii && c < 0x80;
          word.push_back(static_cast<char>(c));
          line_open = true;
        }
      } else {
        if (word.empty()) {
          int len = utf8_len(c);
          if (len == 0) fail("{}: invalid UTF-8 byte 0x{:02x} at offset {} (character mode needs UTF-8 text)", path, c, at);
          word_at = at;
          word_ascii = c < 0x80;
          word.push_back(static_cast<char>(c));
        } else {
          if ((c & 0xC0) != 0x80) fail("{}: invalid UTF-8 sequence at offset {} (character mode needs UTF-8 text)", path, at);
          word.push_back(static_cast<char>(c));
        }
        if (static_cast<int>(word.size()) == utf8_len(static_cast<unsigned char>(word[0]))) flush_word();
      }
    }
    offset += n;
  }
  if (mode == TokenMode::Char) {
    if (pending_cr) {
      on_token("\r");
      ++count;
    }
    if (!word.empty()) fail("{}: truncated UTF-8 sequence at the end of the file", path);
  } else {
    flush_word();
    if (line_open) on_eol();
  }
  return count;
}

}  // namespace manylm
