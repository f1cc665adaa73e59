// crc32c.h — CRC-32C (Castagnoli: polynomial 0x1EDC6F41, reflected, initial and final value 0xFFFFFFFF; the
// checksum of iSCSI, ext4 and Btrfs), the checksum of manylm's files. SSE4.2's crc32 instruction 8 bytes at a
// time where the CPU has it, else a table, byte by byte (the same values; tests compare them). Chainable:
// crc32c(b, crc32c(a)) is the CRC of a followed by b. Not a cryptographic hash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace manylm {

uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
inline uint32_t crc32c(std::string_view bytes, uint32_t crc = 0) { return crc32c(bytes.data(), bytes.size(), crc); }
// The two implementations, for tests: the table (any CPU) and SSE4.2 (false where the CPU lacks it).
uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);
bool crc32c_sse42(const void* data, size_t n, uint32_t crc, uint32_t* out);
// Eight lowercase hex digits, as files record it.
std::string crc32c_hex(uint32_t crc);

}  // namespace manylm
