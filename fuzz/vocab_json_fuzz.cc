// vocab_json_fuzz.cc — libFuzzer target: a run's vocab.json (data/vocab.h Vocab::from_json) on any bytes. A
// vocabulary it accepts has <unk> (and <eos> in word mode), one id per word, and writes and reads back equal.
#include "data/vocab.h"
#include "fuzz/fuzz_util.h"

using namespace manylm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Vocab v;
  if (!fuzz::accepts([&] { v = Vocab::from_json(std::string(fuzz::bytes(data, size)), "vocab.json"); })) return 0;
  fuzz::check(v.size() > 0 && v.unk() >= 0 && (v.mode() == TokenMode::Char || v.eos() >= 0),
              "an accepted vocabulary has <unk> (and <eos> for words)");
  for (int32_t i = 0; i < v.size(); ++i) {
    fuzz::check(v.find(v.word(i)) == i, "every word has its own id");
    fuzz::check(v.count(i) >= 0, "counts are not negative");
  }
  Vocab w;
  fuzz::check(fuzz::accepts([&] { w = Vocab::from_json(v.to_json(), "again"); }), "a written vocabulary reads back");
  fuzz::check(w.size() == v.size() && w.mode() == v.mode() && w.hash() == v.hash(), "it reads back equal");
  for (int32_t i = 0; i < v.size(); ++i) fuzz::check(w.count(i) == v.count(i), "with the same counts");
  return 0;
}
