// safetensors.h — the safetensors layout (8-byte little-endian header length, JSON header, raw data), so
// PyTorch and Hugging Face tooling read manylm's weights without conversion. F32 tensors only.
// Every file written records a CRC-32C (core/crc32c.h) of each tensor's bytes and of its other metadata, in
// the metadata entry "manylm.checksums" (a JSON string: {"algorithm": "crc32c", "metadata": hex, "tensors":
// {name: hex}}), which PyTorch's loaders pass over. Reading validates everything (length, JSON, dtype, shapes
// and their byte counts, data_offsets that cover the data section exactly once, the checksums where the file
// has them) and fails with one line naming the file. Not a model format: it knows names, shapes and bytes, nothing
// about layers.
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
  bool checksummed = false;  // it recorded checksums, and they matched (files of older manylm versions have none)
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
