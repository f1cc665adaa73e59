// text_reader.h — streaming tokenizer for corpus files, in bounded memory (1 MiB blocks), so a 10 MB
// file without a newline costs no more than any other. Handles a UTF-8 byte-order mark (skipped) and
// CRLF (read as LF). Rejects NUL bytes (binary files) and, in character mode, invalid UTF-8, with one
// error line naming the file and byte offset. Word mode: whitespace-separated words, one end-of-line per
// line (also for a last line without '\n'). Character mode: UTF-8 characters, '\n' is a token.
// Not a vocabulary (vocab.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/names.h"

namespace manylm {

enum class TokenMode { Word, Char };
inline constexpr Named<TokenMode> kTokenModeNames[] = {{TokenMode::Word, "word"}, {TokenMode::Char, "char"}};
constexpr std::span<const Named<TokenMode>> enum_names(TokenMode) { return kTokenModeNames; }
TokenMode parse_token_mode(const std::string& s);  // UserError naming --tokens and the choices
const char* token_mode_name(TokenMode m);
// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

// What a reader may also do with the bytes it reads: hash them (core/io.h hash_file's value), count them for
// a progress line (added as each block is read).
struct ReadHooks {
  uint64_t* content_hash = nullptr;
  std::atomic<int64_t>* bytes_read = nullptr;
};

// Calls on_token(token) for each token; in word mode on_eol() after each line. Returns tokens seen
// (excluding end-of-lines).
int64_t read_tokens(const std::string& path, TokenMode mode, const std::function<void(std::string_view)>& on_token,
                    const std::function<void()>& on_eol, const ReadHooks& hooks = {});

}  // namespace manylm
