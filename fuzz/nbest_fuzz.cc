// nbest_fuzz.cc — libFuzzer target: the input of `manylm rescore` (data/nbest.h) — an n-best file read line by
// line as the command reads it, each key's utterance and conversation under a --key-regex and a
// --conversation-regex or an utt2spk file. The input is: two selector bytes (the key and conversation
// expressions, from kRegexes: realistic ones, an invalid one, or — the last entry — the rest of the line as an
// expression without repetition, so the fuzzer explores the reader and not the backtracking of std::regex on
// patterns a user chose), kSep, the utt2spk file (used when no conversation expression is selected and it is not
// empty), kSep, the n-best file. A hypothesis has its key (a non-empty field) and its words' ids in the vocabulary,
// then <eos>; an utterance is part of its key.
#include <algorithm>
#include <sstream>

#include "data/nbest.h"
#include "fuzz/fuzz_util.h"

using namespace manylm;

namespace {
constexpr std::string_view kSep = "\n--manylm-fuzz-next-file--\n";
const char* const kRegexes[] = {"",   "^(.*)-[0-9]+$", "^([^-]+)", "^[a-z0-9_]+", "(x)?y", "^(s[0-9]+)_",
                                "([", "(a)(b)\\2",     nullptr};
constexpr size_t kRegexCount = std::size(kRegexes);

std::string pick(uint8_t selector, std::string_view rest) {
  const size_t i = selector % kRegexCount;
  if (kRegexes[i]) return kRegexes[i];
  std::string re(rest.substr(0, std::min<size_t>(rest.size(), 32)));
  std::erase_if(re, [](char c) { return c == '*' || c == '+' || c == '?' || c == '{' || c == '\n'; });
  return re;
}

struct Words {
  Vocab vocab{TokenMode::Word,
              {"<unk>", "<eos>", "the", "a", "cat", "sat", "on", "mat", "caf\xc3\xa9"},
              std::vector<int64_t>(9, 1)};
};

void check_hypothesis(const Hypothesis& h, const Vocab& v) {
  fuzz::check(!h.key.empty() && h.key.find_first_of(" \t\r") == std::string::npos, "a key is one field");
  fuzz::check(h.ids.size() == static_cast<size_t>(h.words) + 1 && h.ids.back() == v.eos(), "words, then <eos>");
  fuzz::check(h.oov >= 0 && h.oov <= h.words, "out-of-vocabulary words are words");
  for (const int32_t id : h.ids) fuzz::check(id >= 0 && id < v.size(), "ids are in the vocabulary");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Words words;
  const auto parts = fuzz::split(fuzz::bytes(data, size), kSep, 3);
  const std::string_view sel = parts[0];
  KeyRules rules;
  rules.nbest = "nbest.txt";
  rules.key_regex = pick(sel.size() > 0 ? sel[0] : 0, sel.size() > 2 ? sel.substr(2) : "");
  rules.conversation_regex = pick(sel.size() > 1 ? sel[1] : 0, sel.size() > 2 ? sel.substr(2) : "");
  if (rules.conversation_regex.empty() && !parts[1].empty()) {
    rules.utt2spk = fuzz::scratch_dir() + "/utt2spk";
    fuzz::put_file(rules.utt2spk, parts[1]);
  }
  std::optional<UtteranceKeys> keys;
  if (!fuzz::accepts([&] { keys.emplace(rules); })) return 0;
  std::istringstream in{std::string(parts[2])};
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const std::optional<Hypothesis> h = parse_hypothesis(line, words.vocab);
    if (!h) continue;
    check_hypothesis(*h, words.vocab);
    std::string u;
    if (!fuzz::accepts([&] { u = keys->utterance(h->key, n); })) return 0;
    fuzz::check(h->key.find(u) != std::string::npos, "an utterance is part of its key");
    if (rules.key_regex.empty()) fuzz::check(!u.empty() && h->key.starts_with(u), "by default, a prefix");
    if (!fuzz::accepts([&] { keys->conversation(h->key, u, n); })) return 0;
  }
  return 0;
}
