// vocab_file.cc — see vocab_file.h.
#include "data/vocab_file.h"

#include <charconv>
#include <fstream>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

namespace {

// The whitespace-separated fields of a line (a trailing CR dropped).
std::vector<std::string_view> fields(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> out;
  size_t i = 0;
  auto space = [&](char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; };
  while (i < line.size()) {
    while (i < line.size() && space(line[i])) ++i;
    const size_t b = i;
    while (i < line.size() && !space(line[i])) ++i;
    if (i > b) out.push_back(line.substr(b, i - b));
  }
  return out;
}

bool number(std::string_view s, int64_t& v) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v >= 0;
}

// Calls fn(line_number, fields) for each non-blank line.
template <class Fn>
void for_each_line(const std::string& path, Fn&& fn) {
  require_regular_file(path, "vocabulary (--vocab-file)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("--vocab-file: cannot open {}", path);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (n == 1 && line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);  // a byte-order mark
    const std::vector<std::string_view> f = fields(line);
    if (!f.empty() && !fn(n, f)) return;
  }
  if (in.bad()) fail("--vocab-file: {}: read error", path);
}

bool kaldi_skipped(std::string_view w) {  // <eps>, and the disambiguation symbols #0, #1, ...
  return w == "<eps>" || (w.size() >= 2 && w[0] == '#' && w.find_first_not_of("0123456789", 1) == w.npos);
}

}  // namespace

VocabFormat detect_vocab_format(const std::string& path) {
  std::vector<std::vector<std::string>> first;
  for_each_line(path, [&](int64_t, const std::vector<std::string_view>& f) {
    first.emplace_back(f.begin(), f.end());
    return first.size() < 2;
  });
  if (first.empty()) fail("--vocab-file: {}: no words", path);
  const auto& a = first[0];
  if (a.size() == 1) return VocabFormat::Lines;
  int64_t n0 = -1, n1 = -1;
  if (a.size() == 2 && number(a[1], n0)) {
    if (a[0] == "<eps>") return VocabFormat::Kaldi;
    if (first.size() == 2 && first[1].size() == 2 && number(first[1][1], n1) && n0 == 0 && n1 == 1)
      return VocabFormat::Kaldi;
    return VocabFormat::Lm1b;
  }
  fail("--vocab-file: {}: cannot tell its format from its first line ({} fields); name it with --vocab-format", path,
       a.size());
}

Vocab load_vocab_file(const std::string& path, VocabFormat format, const std::string& unk_word,
                      const std::string& eos_word) {
  if (format == VocabFormat::Auto) format = detect_vocab_format(path);
  const char* name = name_of(format);
  std::vector<std::string> words;
  std::vector<int64_t> counts;
  std::unordered_map<std::string, int64_t> line_of;  // word → its line
  int64_t last_id = -1, last_id_line = 0;
  for_each_line(path, [&](int64_t n, const std::vector<std::string_view>& f) {
    const size_t want = format == VocabFormat::Lines ? 1 : 2;
    const char* layout = format == VocabFormat::Lines   ? "one word"
                         : format == VocabFormat::Kaldi ? "word id"
                                                        : "word count";
    int64_t v = 0;
    if (f.size() != want || (want == 2 && !number(f[1], v)))
      fail("--vocab-file: {}:{}: expected '{}' per line (--vocab-format {})", path, n, layout, name);
    const std::string w(f[0]);
    if (format == VocabFormat::Kaldi) {
      if (v <= last_id)
        fail("--vocab-file: {}:{}: id {} of '{}' is not above the id {} of line {} (Kaldi ids must ascend, each once)",
             path, n, v, w, last_id, last_id_line);
      last_id = v, last_id_line = n;
      if (kaldi_skipped(w)) return true;
    }
    if (!valid_utf8(w)) fail("--vocab-file: {}:{}: the word is not valid UTF-8", path, n);
    if (auto [it, added] = line_of.emplace(w, n); !added)
      fail("--vocab-file: {}:{}: the word '{}' is listed twice (lines {} and {})", path, n, w, it->second, n);
    words.push_back(w);
    counts.push_back(format == VocabFormat::Lm1b ? v : 0);
    return true;
  });
  if (words.empty()) fail("--vocab-file: {}: no words", path);
  if (!line_of.count(unk_word))
    fail("--vocab-file: {} has no unknown word '{}' (name the file's with --unk-token, e.g. <UNK>)", path, unk_word);
  if (!line_of.count(eos_word))
    fail("--vocab-file: {} has no line-end word '{}' (name the file's with --eos-token, e.g. </S> or </s>)", path,
         eos_word);
  Vocab vocab(TokenMode::Word, std::move(words), std::move(counts), unk_word, eos_word);
  vocab.set_source(path, name);
  return vocab;
}

}  // namespace manylm
