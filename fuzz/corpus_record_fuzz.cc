// corpus_record_fuzz.cc — libFuzzer target: a run's corpus.json as `train --resume` reads it (train/resume.h
// corpus_change) against the text of fuzz/make_seeds.sh's run as train fingerprints it now (kNow). Any bytes give
// one error line (not a corpus record) or an answer: no change, or the part that changed and why; the record
// train wrote (kNow itself) is no change.
#include "fuzz/fuzz_util.h"
#include "train/resume.h"

using namespace manylm;

namespace {
const std::string kNow =
    R"({"train": {"files":[{"bytes":3000,"hash":"ab7b0bf59d2bc4c2","name":"train.txt","tokens":532}]}, )"
    R"("valid": {"files":[{"bytes":1000,"hash":"3af5e2eab434524e","name":"valid.txt","tokens":179}]}, )"
    R"("test": {"files":[{"bytes":1000,"hash":"1acbd8fc6fd96ab7","name":"test.txt","tokens":182}]}})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool same = corpus_change(kNow, kNow, "corpus.json").first.empty();
  fuzz::check(same, "the record train writes is no change");
  std::pair<std::string, std::string> change;
  if (!fuzz::accepts([&] { change = corpus_change(fuzz::bytes(data, size), kNow, "corpus.json"); })) return 0;
  const auto& [part, why] = change;
  fuzz::check(part.empty() == why.empty(), "a change says why");
  fuzz::check(part.empty() || part == "train" || part == "valid" || part == "test", "a change names its part");
  return 0;
}
