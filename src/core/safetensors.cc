// safetensors.cc — see safetensors.h.
#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/io.h"

namespace manylm {

using nlohmann::json;

namespace {

constexpr const char* kChecksums = "manylm.checksums";

// CRC-32C of the metadata but the checksums' own entry: key, NUL, value, NUL, in key order.
uint32_t metadata_crc(const std::map<std::string, std::string>& metadata) {
  uint32_t c = 0;
  for (const auto& [k, v] : metadata) {
    if (k == kChecksums) continue;
    c = crc32c(v, crc32c(std::string_view(k.c_str(), k.size() + 1)));
    c = crc32c(std::string_view("\0", 1), c);
  }
  return c;
}

}  // namespace

std::string encode_safetensors(const std::map<std::string, const SafeTensor*>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  json sums = {{"algorithm", "crc32c"}, {"metadata", crc32c_hex(metadata_crc(metadata))}, {"tensors", json::object()}};
  size_t off = 0;
  for (const auto& [name, t] : tensors) {
    size_t bytes = t->values.size() * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {off, off + bytes}}};
    sums["tensors"][name] = crc32c_hex(crc32c(t->values.data(), bytes));
    off += bytes;
  }
  std::map<std::string, std::string> meta = metadata;
  meta[kChecksums] = sums.dump();
  header["__metadata__"] = meta;
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // keep the data 8-byte aligned, as the spec suggests
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + off);
  for (const auto& [name, t] : tensors)
    out.append(reinterpret_cast<const char*>(t->values.data()), t->values.size() * sizeof(float));
  return out;
}

std::string encode_arenas(const std::vector<const Arena*>& arenas, const std::map<std::string, std::string>& metadata,
                          const std::map<std::string, std::string>& aliases) {
  std::map<std::string, SafeTensor> owned;
  std::map<std::string, const SafeTensor*> refs;
  for (const Arena* arena : arenas)
    for (size_t k = 0; k < arena->table().size(); ++k) {
      TensorView v = (*arena)[k];
      SafeTensor t{v.spec->shape, std::vector<float>(v.data, v.data + v.numel())};
      owned[v.spec->name] = std::move(t);
    }
  for (auto& [n, t] : owned) refs[n] = &t;
  for (auto& [alias, source] : aliases) refs[alias] = &owned.at(source);
  return encode_safetensors(refs, metadata);
}

void save_safetensors(const std::string& path, const std::vector<const Arena*>& arenas,
                      const std::map<std::string, std::string>& metadata,
                      const std::map<std::string, std::string>& aliases) {
  write_file_atomic(path, encode_arenas(arenas, metadata, aliases));
}

namespace {

// One tensor's header entry: F32, a shape of non-negative integers whose element count fits the data section,
// data_offsets [b, e) inside it of exactly that many bytes. Returns the shape and the range.
std::pair<std::vector<int64_t>, std::pair<size_t, size_t>> tensor_entry(const json& e, const std::string& name,
                                                                        size_t data_size, const std::string& path) {
  if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
    fail("{}: tensor {} has a malformed header entry", path, name);
  const json& dtype = e["dtype"];
  if (!dtype.is_string() || dtype.get<std::string>() != "F32")
    fail("{}: tensor {} has dtype {}, manylm reads F32 only", path, name, dtype.dump());
  const json& shape = e["shape"];
  if (!shape.is_array()) fail("{}: tensor {} has a bad shape (not a list)", path, name);
  std::vector<int64_t> dims;
  for (const json& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) fail("{}: tensor {} has a bad shape", path, name);
    dims.push_back(d.get<int64_t>());
  }
  uint64_t numel = std::find(dims.begin(), dims.end(), 0) != dims.end() ? 0 : 1;
  for (int64_t d : dims) {  // checked against the data section first: no product can overflow
    if (numel > 0 && numel > data_size / sizeof(float) / static_cast<uint64_t>(d))
      fail("{}: truncated or damaged: tensor {} has a shape larger than the file's data ({} bytes)", path, name,
           data_size);
    numel *= static_cast<uint64_t>(d);
  }
  const json& o = e["data_offsets"];
  if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned())
    fail("{}: tensor {} has bad data_offsets", path, name);
  const auto b = o[0].get<uint64_t>(), en = o[1].get<uint64_t>();
  if (b > en || en > data_size)
    fail("{}: truncated: tensor {} needs bytes {}..{} but the data section has {}", path, name, b, en, data_size);
  if (en - b != numel * sizeof(float)) fail("{}: tensor {} size does not match its shape", path, name);
  return {dims, {static_cast<size_t>(b), static_cast<size_t>(en)}};
}

// The tensors' ranges cover the data section exactly once, in some order: no overlap, no gap, nothing after.
void check_layout(std::vector<std::pair<size_t, size_t>> ranges, size_t data_size, const std::string& path) {
  std::sort(ranges.begin(), ranges.end());
  size_t at = 0;
  for (const auto& [b, e] : ranges) {
    if (b < at) fail("{}: tensors' data_offsets overlap (bytes {}..{})", path, b, at);
    if (b > at) fail("{}: the data section has bytes {}..{} that no tensor holds", path, at, b);
    at = e;
  }
  if (at != data_size) fail("{}: the data section has bytes {}..{} that no tensor holds", path, at, data_size);
}

// A file that records checksums (manylm.checksums) must match them: the metadata's and every tensor's.
bool verify_checksums(const SafeTensorsFile& f, const std::map<std::string, uint32_t>& crcs, const std::string& path) {
  const auto it = f.metadata.find(kChecksums);
  if (it == f.metadata.end()) return false;
  const json sums = json::parse(it->second, nullptr, false);
  if (sums.is_discarded() || !sums.is_object() || !sums.contains("algorithm") || sums["algorithm"] != "crc32c" ||
      !sums.contains("metadata") || !sums.contains("tensors") || !sums["tensors"].is_object())
    fail("{}: its checksums ({}) are malformed: the file is damaged", path, kChecksums);
  if (sums["metadata"] != crc32c_hex(metadata_crc(f.metadata)))
    fail("{}: its metadata (training state, step, model) does not match its CRC-32C: the file is damaged", path);
  if (sums["tensors"].size() != crcs.size())
    fail("{}: holds {} tensors but its checksums list {}: the file is damaged", path, crcs.size(),
         sums["tensors"].size());
  for (const auto& [name, crc] : crcs) {
    const auto t = sums["tensors"].find(name);
    if (t == sums["tensors"].end() || *t != crc32c_hex(crc))
      fail("{}: tensor {} does not match its CRC-32C: the file is damaged", path, name);
  }
  return true;
}

}  // namespace

SafeTensorsFile load_safetensors(const std::string& path) {
  std::string bytes = read_file(path, "safetensors");
  if (bytes.size() < 8) fail("{}: truncated safetensors file ({} bytes)", path, bytes.size());
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8 || n > (100u << 20))
    fail("{}: not a safetensors file or truncated (header length {} but file has {} bytes)", path, n, bytes.size());
  json header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<ptrdiff_t>(n), nullptr, false);
  if (header.is_discarded() || !header.is_object()) fail("{}: not a safetensors file (header is not JSON)", path);
  size_t data_begin = 8 + n, data_size = bytes.size() - data_begin;
  SafeTensorsFile f;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::map<std::string, uint32_t> crcs;
  for (auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) fail("{}: __metadata__ is not an object", path);
      for (auto& [k, v] : e.items()) {
        if (!v.is_string()) fail("{}: metadata value {} is not a string", path, k);
        f.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    auto [shape, range] = tensor_entry(e, name, data_size, path);
    const char* data = bytes.data() + data_begin + range.first;
    SafeTensor t{std::move(shape), std::vector<float>((range.second - range.first) / sizeof(float))};
    if (range.second > range.first) std::memcpy(t.values.data(), data, range.second - range.first);
    crcs[name] = crc32c(data, range.second - range.first);
    ranges.push_back(range);
    f.tensors[name] = std::move(t);
  }
  check_layout(std::move(ranges), data_size, path);
  f.checksummed = verify_checksums(f, crcs, path);
  return f;
}

void fill_arena(const SafeTensorsFile& f, Arena& arena, const std::string& path) {
  for (size_t k = 0; k < arena.table().size(); ++k) {
    TensorView v = arena[k];
    auto it = f.tensors.find(v.spec->name);
    if (it == f.tensors.end()) fail("{}: missing tensor {} (checkpoint does not match this model)", path, v.spec->name);
    if (it->second.shape != v.spec->shape) {
      std::string want, got;
      for (auto d : v.spec->shape) want += std::to_string(d) + " ";
      for (auto d : it->second.shape) got += std::to_string(d) + " ";
      fail("{}: tensor {} has shape [{}] but the model needs [{}]", path, v.spec->name, got, want);
    }
    if (!it->second.values.empty())
      std::memcpy(v.data, it->second.values.data(), it->second.values.size() * sizeof(float));
  }
}

}  // namespace manylm
