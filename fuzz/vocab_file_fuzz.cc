// vocab_file_fuzz.cc — libFuzzer target: any bytes as a --vocab-file (data/vocab_file.h), read in each format
// (auto-detected, lines, kaldi, lm1b). The input is the unknown and line-end words' names (one line: "UNK EOS";
// anything else: <unk> and </s>), kSep, then the file. A vocabulary it accepts is word-level, holds both named
// words at their ids, gives every (valid UTF-8) word its own id, has no more words than the file has lines, and
// writes and reads back as vocab.json equal; auto-detection reads as the format it names.
#include <algorithm>

#include "data/vocab_file.h"
#include "fuzz/fuzz_util.h"

using namespace manylm;

namespace {
constexpr std::string_view kSep = "\n--manylm-fuzz-next-file--\n";

void check_vocab(const Vocab& v, const std::string& unk, const std::string& eos, std::string_view text) {
  fuzz::check(v.mode() == TokenMode::Word && v.size() > 0, "a word-level vocabulary");
  fuzz::check(v.unk() >= 0 && v.word(v.unk()) == unk, "the unknown word is the one named");
  fuzz::check(v.eos() >= 0 && v.word(v.eos()) == eos, "the line-end word is the one named");
  fuzz::check(v.size() <= std::count(text.begin(), text.end(), '\n') + 1, "at most one word a line");
  for (int32_t i = 0; i < v.size(); ++i) {
    fuzz::check(valid_utf8(v.word(i)) && !v.word(i).empty(), "words are UTF-8, not empty");
    fuzz::check(v.find(v.word(i)) == i, "every word has its own id");
    fuzz::check(v.count(i) >= 0, "counts are not negative");
  }
  Vocab w;
  fuzz::check(fuzz::accepts([&] { w = Vocab::from_json(v.to_json(), "vocab.json"); }), "vocab.json reads back");
  fuzz::check(w.size() == v.size() && w.hash() == v.hash() && w.unk() == v.unk() && w.eos() == v.eos(), "and equal");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split(fuzz::bytes(data, size), kSep, 2);
  std::string unk = "<unk>", eos = "</s>";
  if (const size_t sp = parts[0].find(' '); sp != std::string_view::npos && sp > 0 && sp + 1 < parts[0].size()) {
    unk = parts[0].substr(0, sp);
    eos = parts[0].substr(sp + 1);
  }
  const std::string path = fuzz::scratch_dir() + "/vocab.txt";
  fuzz::put_file(path, parts[1]);
  VocabFormat detected = VocabFormat::Auto;
  fuzz::accepts([&] { detected = detect_vocab_format(path); });
  uint64_t auto_hash = 0, detected_hash = 0;
  for (const VocabFormat f : {VocabFormat::Auto, VocabFormat::Lines, VocabFormat::Kaldi, VocabFormat::Lm1b}) {
    Vocab v;
    if (!fuzz::accepts([&] { v = load_vocab_file(path, f, unk, eos); })) continue;
    check_vocab(v, unk, eos, parts[1]);
    if (f == VocabFormat::Auto) auto_hash = v.hash();
    if (f == detected) detected_hash = v.hash();
  }
  fuzz::check(auto_hash == detected_hash, "auto-detection reads as the format it detects");
  return 0;
}
