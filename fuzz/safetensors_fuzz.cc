// safetensors_fuzz.cc — libFuzzer target: core/safetensors.h's reader on any bytes as a .safetensors file.
// A file it accepts must re-encode to one that loads to the same tensors and metadata, bit for bit, and fill an
// arena only when every tensor of the arena's table is there with its shape.
#include <cstring>

#include "core/safetensors.h"
#include "fuzz/fuzz_util.h"

using namespace manylm;

namespace {
// The checksums a file records are of its own bytes: re-encoding writes them anew.
std::map<std::string, std::string> without_checksums(std::map<std::string, std::string> m) {
  m.erase("manylm.checksums");
  return m;
}

bool same(const SafeTensorsFile& a, const SafeTensorsFile& b) {
  if (without_checksums(a.metadata) != without_checksums(b.metadata) || a.tensors.size() != b.tensors.size())
    return false;
  for (const auto& [name, t] : a.tensors) {
    auto it = b.tensors.find(name);
    if (it == b.tensors.end() || it->second.shape != t.shape || it->second.values.size() != t.values.size() ||
        (!t.values.empty() &&
         std::memcmp(it->second.values.data(), t.values.data(), t.values.size() * sizeof(float)) != 0))
      return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::scratch_dir() + "/in.safetensors", again = fuzz::scratch_dir() + "/re.safetensors";
  fuzz::put_file(path, fuzz::bytes(data, size));
  SafeTensorsFile f;
  if (!fuzz::accepts([&] { f = load_safetensors(path); })) return 0;
  std::map<std::string, const SafeTensor*> refs;
  for (const auto& [name, t] : f.tensors) refs[name] = &t;
  fuzz::put_file(again, encode_safetensors(refs, f.metadata));
  SafeTensorsFile g;
  fuzz::check(fuzz::accepts([&] { g = load_safetensors(again); }), "a re-encoded file loads");
  fuzz::check(same(f, g), "a re-encoded file loads to the same tensors and metadata");
  // The tensors of a small model's table (names as the seeds' tiny LSTM has them).
  Arena arena({{"encoder.weight", {40, 8}}, {"decoder.bias", {40}}, {"rnn.weight_hh_l0", {32, 8}}});
  if (fuzz::accepts([&] { fill_arena(f, arena, path); }))
    for (size_t k = 0; k < arena.table().size(); ++k) {
      const SafeTensor& t = f.tensors.at(arena[k].spec->name);
      fuzz::check(t.shape == arena[k].spec->shape, "fill_arena accepts the table's shapes only");
      fuzz::check(t.values.empty() || std::memcmp(arena[k].data, t.values.data(), t.values.size() * sizeof(float)) == 0,
                  "fill_arena copies the file's values");
    }
  return 0;
}
