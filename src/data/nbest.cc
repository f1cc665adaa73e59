// nbest.cc — see nbest.h.
#include "data/nbest.h"

#include <fstream>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

namespace {

// The part of `s` a regular expression names: its first group when it has one, else the whole match.
std::optional<std::string> regex_part(const std::regex& re, const std::string& s) {
  std::smatch m;
  if (!std::regex_search(s, m, re)) return std::nullopt;
  return m.size() > 1 && m[1].matched ? m[1].str() : m[0].str();
}

// std::regex (libstdc++) recurses once or more per character it matches: a long key overflowed the stack
// (a segmentation fault at 50 KB with '^(.*)-[0-9]+$'). Keys are far shorter; longer ones are an error.
constexpr size_t kMaxRegexKey = 1024;

void check_key_length(const std::string& key, const char* option, int64_t line, const std::string& nbest) {
  if (key.size() > kMaxRegexKey)
    fail("{}: the key on line {} of {} is {} bytes long; a key matched by an expression may have at most {}", option,
         line, nbest, key.size(), kMaxRegexKey);
}

// libstdc++ (GCC 12) reads the number of a back-reference (\12) or a repeat count ({2,5}) into a long with no
// overflow check: 19 digits were undefined behaviour (signed overflow; found by fuzz_nbest). No expression needs
// more than 6.
void check_numbers(const std::string& re, const char* option) {
  auto digit = [&](size_t k) { return k < re.size() && re[k] >= '0' && re[k] <= '9'; };
  bool in_count = false;  // within {n,m}
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && !digit(i + 1)) {  // an escaped character, not a number
      ++i;
      continue;
    }
    if (c == '}') in_count = false;
    if (c != '\\' && c != '{' && !(c == ',' && in_count)) continue;
    in_count = in_count || c == '{';
    size_t j = i + 1;
    while (digit(j)) ++j;
    if (j - i - 1 > 6)
      fail("{} '{}': a number of {} digits (a back-reference or a repeat count has at most 6)", option, re, j - i - 1);
  }
}

std::regex compile(const std::string& re, const char* option) {
  check_numbers(re, option);
  try {
    return std::regex(re, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail("{} '{}': not a regular expression ({})", option, re, e.what());
  }
}

}  // namespace

std::vector<std::string_view> nbest_fields(std::string_view line) {
  std::vector<std::string_view> out;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && space(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !space(line[j])) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<Hypothesis> parse_hypothesis(std::string_view line, const Vocab& vocab) {
  const auto f = nbest_fields(line);
  if (f.empty()) return std::nullopt;
  Hypothesis h{std::string(f[0]), {}, static_cast<int64_t>(f.size()) - 1, 0};
  h.ids.reserve(f.size());
  for (size_t i = 1; i < f.size(); ++i) {
    const int32_t id = vocab.find(f[i]);
    h.oov += id < 0;
    h.ids.push_back(id < 0 ? vocab.unk() : id);
  }
  h.ids.push_back(vocab.eos());
  return h;
}

UtteranceKeys::UtteranceKeys(KeyRules rules) : r_(std::move(rules)) {
  if (!r_.key_regex.empty()) key_re_ = compile(r_.key_regex, "--key-regex");
  if (!r_.conversation_regex.empty()) conv_re_ = compile(r_.conversation_regex, "--conversation-regex");
  if (!r_.utt2spk.empty()) read_utt2spk();
}

std::string UtteranceKeys::utterance(const std::string& key, int64_t line) const {
  if (!key_re_) {  // Kaldi's uttid-N: the key up to its last '-'
    const size_t dash = key.rfind('-');
    return dash == std::string::npos || dash == 0 ? key : key.substr(0, dash);
  }
  check_key_length(key, "--key-regex", line, r_.nbest);
  if (auto u = regex_part(*key_re_, key)) return *u;
  fail("--key-regex '{}': the key '{}' on line {} of {} does not match", r_.key_regex, key, line, r_.nbest);
}

std::string UtteranceKeys::conversation(const std::string& key, const std::string& utt, int64_t line) const {
  if (conv_re_) {
    check_key_length(key, "--conversation-regex", line, r_.nbest);
    if (auto c = regex_part(*conv_re_, key)) return *c;
    fail("--conversation-regex '{}': the key '{}' on line {} of {} does not match", r_.conversation_regex, key, line,
         r_.nbest);
  }
  if (!r_.utt2spk.empty()) {
    const auto it = spk_.find(utt);
    if (it == spk_.end())
      fail("--utt2spk {}: has no line for utterance '{}' (line {} of {})", r_.utt2spk, utt, line, r_.nbest);
    return it->second;
  }
  return "";  // one conversation
}

void UtteranceKeys::read_utt2spk() {
  const std::string& path = r_.utt2spk;
  std::ifstream in(path);
  if (!in || is_directory(path)) fail("--utt2spk {}: cannot read the file", path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const auto f = nbest_fields(line);
    if (f.empty()) continue;
    if (f.size() != 2) fail("--utt2spk {}: line {} is not 'UTTERANCE SPEAKER'", path, n);
    spk_[std::string(f[0])] = std::string(f[1]);
  }
  if (in.bad()) fail("--utt2spk {}: read error", path);
}

}  // namespace manylm
