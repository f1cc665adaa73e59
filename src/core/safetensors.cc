// safetensors.cc — see safetensors.h.
#include "core/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

using nlohmann::json;

std::string encode_safetensors(const std::map<std::string, const SafeTensor*>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t off = 0;
  for (const auto& [name, t] : tensors) {
    size_t bytes = t->values.size() * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
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
  for (auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) fail("{}: __metadata__ is not an object", path);
      for (auto& [k, v] : e.items()) {
        if (!v.is_string()) fail("{}: metadata value {} is not a string", path, k);
        f.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      fail("{}: tensor {} has a malformed header entry", path, name);
    if (e["dtype"] != "F32") fail("{}: tensor {} has dtype {}, manylm reads F32 only", path, name, e["dtype"].dump());
    SafeTensor t;
    int64_t numel = 1;
    for (auto& d : e["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) fail("{}: tensor {} has a bad shape", path, name);
      t.shape.push_back(d.get<int64_t>());
      numel *= t.shape.back();
    }
    auto& o = e["data_offsets"];
    if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned())
      fail("{}: tensor {} has bad data_offsets", path, name);
    size_t b = o[0].get<size_t>(), en = o[1].get<size_t>();
    if (b > en || en > data_size)
      fail("{}: truncated: tensor {} needs bytes {}..{} but the data section has {}", path, name, b, en, data_size);
    if (en - b != static_cast<size_t>(numel) * sizeof(float))
      fail("{}: tensor {} size does not match its shape", path, name);
    t.values.resize(static_cast<size_t>(numel));
    std::memcpy(t.values.data(), bytes.data() + data_begin + b, en - b);
    f.tensors[name] = std::move(t);
  }
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
    std::memcpy(v.data, it->second.values.data(), it->second.values.size() * sizeof(float));
  }
}

}  // namespace manylm
