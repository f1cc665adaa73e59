// nbest.h — the text `manylm rescore` reads, in Kaldi's formats: n-best lines `KEY word word …` as ids, the
// utterance a key belongs to (the key up to its last '-', or what --key-regex names), and its conversation
// (what --conversation-regex names, or the speaker an utt2spk file gives it: `UTTERANCE SPEAKER` a line). All of it
// untrusted text: anything malformed is one UserError naming the option, file and line. Not the scoring
// (train/sentences.h) and not the command (cli/rescore_cmd.cc).
#pragma once
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/vocab.h"

namespace manylm {

// The fields of a line, split on spaces, tabs and CRs.
std::vector<std::string_view> nbest_fields(std::string_view line);

// One hypothesis: its key and its words' ids (a word outside the vocabulary as its unknown word), then the
// sentence end.
struct Hypothesis {
  std::string key;
  std::vector<int32_t> ids;
  int64_t words = 0, oov = 0;
};
// `line` as a hypothesis of `vocab` (a word-level one: it has a sentence end); nullopt for a blank line.
std::optional<Hypothesis> parse_hypothesis(std::string_view line, const Vocab& vocab);

// The options that say which utterance and conversation a key belongs to (empty: not given), and the n-best
// file's name for the error lines.
struct KeyRules {
  std::string key_regex, conversation_regex, utt2spk, nbest;
};

class UtteranceKeys {
 public:
  // Compiles the expressions and reads the utt2spk file; UserError naming the option for a bad one.
  explicit UtteranceKeys(KeyRules rules);
  // The utterance of the key on line `line`; UserError when --key-regex does not match it, or the key is
  // longer than an expression may match (1024 bytes).
  std::string utterance(const std::string& key, int64_t line) const;
  // Its conversation ("" without --conversation-regex or --utt2spk: one conversation); UserError when the
  // expression does not match (or the key is too long for it) or utt2spk has no line for `utt`.
  std::string conversation(const std::string& key, const std::string& utt, int64_t line) const;

 private:
  void read_utt2spk();
  KeyRules r_;
  std::optional<std::regex> key_re_, conv_re_;
  std::unordered_map<std::string, std::string> spk_;
};

}  // namespace manylm
