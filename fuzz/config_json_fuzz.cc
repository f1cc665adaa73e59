// config_json_fuzz.cc — libFuzzer target: a config file (train --config, a run's config.json; train/options.h
// read_config_file) on any bytes, then what train does with it before allocating anything: validation, the model's
// shape for a few vocabulary sizes, and the memory estimate. A config it accepts writes (config_to_json) and reads
// back to the same text, and counts as the same run when resumed (check_fixed_on_resume).
#include "fuzz/fuzz_util.h"
#include "train/config.h"
#include "train/memory.h"
#include "train/options.h"

using namespace manylm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::scratch_dir() + "/config.json", again = fuzz::scratch_dir() + "/again.json";
  fuzz::put_file(path, fuzz::bytes(data, size));
  Config c;
  if (!fuzz::accepts([&] { read_config_file(path, c); })) return 0;
  const std::string text = config_to_json(c);
  fuzz::put_file(again, text);
  Config d;
  fuzz::check(fuzz::accepts([&] { d = config_from_json_file(again); }), "a written config reads back");
  fuzz::check(config_to_json(d) == text, "a written config reads back unchanged");
  fuzz::check(fuzz::accepts([&] { check_fixed_on_resume(c, d, again); }), "and resumes as the same run");
  if (!fuzz::accepts([&] { c.validate(); })) return 0;
  for (const int64_t vocab : {3, 40, 10000, 800000})
    fuzz::accepts([&] {
      const ModelShape s = c.model_shape(vocab);
      const MemoryEstimate e = estimate_run_memory(c, s, c.batch);
      fuzz::check(e.per_rank() >= 0 && e.checkpoint >= 0, "memory estimates are not negative");
      (void)param_count(s);
    });
  return 0;
}
