// compress.h — gradient codecs for the all-reduce, as pure functions on float spans (no MPI here):
// fp16; int8 (linear, one max-abs scale per block of kBlock values); dyn8 (Dettmers 2016's dynamic
// tree 8-bit type: sign, exponent by leading zeros, indicator bit, linear fraction; per-block max-abs
// scale); threshold (Strom 2015: elements whose magnitude reaches τ are sent as index + sign, meaning ±τ).
// Every encoder does error feedback: it encodes v = g + residual and leaves residual = v − decode(sent),
// so what was sent plus what is held equals the sum of everything fed in (nothing lost, only delayed).
// Not the transport: mpi/reducer.h moves the bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/names.h"

namespace manylm {

enum class Compress { None, Fp16, Int8, Dyn8, Threshold };
inline constexpr Named<Compress> kCompressNames[] = {{Compress::None, "none"},
                                                     {Compress::Fp16, "fp16"},
                                                     {Compress::Int8, "int8"},
                                                     {Compress::Dyn8, "dyn8"},
                                                     {Compress::Threshold, "threshold"}};
constexpr std::span<const Named<Compress>> enum_names(Compress) { return kCompressNames; }

Compress parse_compress(const std::string& name);  // UserError naming the choices
const char* compress_name(Compress c);

constexpr int64_t kBlock = 4096;  // values per scale (int8, dyn8)

// ---- dense codecs: None (raw fp32), Fp16, Int8, Dyn8 ------------------------------------------------
// Bytes that n values encode to (int8/dyn8: n bytes + one fp32 scale per block of kBlock). The byte
// layouts are spelled out at the top of compress.cc. Threshold is not dense: std::invalid_argument here
// and in the three functions below.
size_t dense_bytes(Compress c, int64_t n);
// v = g + residual (residual may be null: no error feedback, v = g); writes dense_bytes(c, n) bytes to
// out (no alignment needed); residual (if given) becomes v − decode(out), with decode(out) rounded to fp32
// first (None: the residual becomes 0). g and residual may alias (be the same array; no partial overlap).
// The bytes do not depend on the thread count. Non-finite v → UserError "gradient compression:
// non-finite value … at element i" naming the first one; out and the residual of other blocks may then
// be partly written.
void dense_encode(Compress c, const float* g, float* residual, int64_t n, uint8_t* out);
// acc[i] += decode(in)[i] for i < n (fp32 accumulation; the compiler may fuse a block scale's product
// with the add, so this can differ from dense_decode then adding in the last bit).
void dense_decode_add(Compress c, const uint8_t* in, int64_t n, float* acc);
// out[i] = decode(in)[i].
void dense_decode(Compress c, const uint8_t* in, int64_t n, float* out);

// Dettmers' dynamic 8-bit type, exposed for tests: the value of code k in [0, 256) for a block scale
// of 1 (|value| ≤ 1), and the code nearest to a (|a| ≤ 1; larger magnitudes are taken as ±1).
float dyn8_value(uint8_t code);
uint8_t dyn8_code(float a);

// ---- threshold (Strom) ------------------------------------------------------------------------------
// A message: [τ as fp32 bits][count][count × uint32: index << 1 | sign(1 = negative)].
// v = g + residual; every i with |v[i]| ≥ τ is sent as sign(v[i])·τ and residual[i] = v[i] ∓ τ; the rest
// stays in residual[i] = v[i]. residual may be null (no error feedback) or alias g, as above.
// tau > 0: fixed τ. tau ≤ 0: adaptive, τ chosen so that about `density`·n elements are sent: the
// (1 − density) quantile of a deterministic stratified sample of |v| (4096..65536 values, about 32
// expected above τ, so the count sent varies by some ±20%), never below the smallest normal float (all
// zeros: nothing sent). Appends the message to out and returns the τ used; entries ascend by index and
// do not depend on the thread count. Non-finite v → UserError as above. n < 2^31 (else std::length_error).
float threshold_encode(const float* g, float* residual, int64_t n, float tau, double density,
                       std::vector<uint32_t>& out);
// acc[index] += ±τ for every entry of the message at `msg` (words); returns the message length in words.
// std::out_of_range if an index is ≥ n (a corrupt or mismatched message).
size_t threshold_decode_add(const uint32_t* msg, int64_t n, float* acc);

}  // namespace manylm
