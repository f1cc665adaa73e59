// safetensors.h — the safetensors layout (8-byte little-endian header length, JSON header, raw data), so
// PyTorch and Hugging Face tooling read manylm's weights without conversion. F32 tensors only.
// Reading validates everything (length, JSON, dtype, offsets, shapes) and fails with one line naming the
// file. Not a model format: it knows names, shapes and bytes, nothing about layers.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/arena.h"

namespace manylm {

struct SafeTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

struct SafeTensorsFile {
  std::map<std::string, std::string> metadata;
  std::map<std::string, SafeTensor> tensors;
};

// Serializes every tensor of the arenas under its table name, plus `metadata`. Atomic write.
// `aliases` {name → existing tensor name} writes a tensor twice under two names (tied weights: PyTorch's
// state_dict lists both encoder.weight and decoder.weight).
void save_safetensors(const std::string& path, const std::vector<const Arena*>& arenas,
                      const std::map<std::string, std::string>& metadata,
                      const std::map<std::string, std::string>& aliases = {});
// The bytes save_safetensors writes.
std::string encode_arenas(const std::vector<const Arena*>& arenas, const std::map<std::string, std::string>& metadata,
                          const std::map<std::string, std::string>& aliases = {});
std::string encode_safetensors(const std::map<std::string, const SafeTensor*>& tensors,
                               const std::map<std::string, std::string>& metadata);
SafeTensorsFile load_safetensors(const std::string& path);

// Copies tensors into `arena` by name; every arena tensor must be present with the same shape.
void fill_arena(const SafeTensorsFile& f, Arena& arena, const std::string& path);

}  // namespace manylm
