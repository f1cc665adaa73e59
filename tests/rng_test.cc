// rng_test.cc — Philox4x32-10 against Random123's own implementation (Debian's librandom123-dev) and
// its published known-answer vectors, the many-blocks kernel against one block at a time, and the
// uniform mapping.
#include <gtest/gtest.h>

#include <Random123/philox.h>

#include <vector>

#include "core/rng.h"

namespace manylm {
namespace {

TEST(Philox, KnownAnswerVectors) {
  // From Random123's kat_vectors: philox4x32 10 rounds.
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (Philox4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (Philox4{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (Philox4{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, MatchesRandom123) {
  r123::Philox4x32_R<10> ref;
  for (uint32_t i = 0; i < 1000; ++i) {
    r123::Philox4x32_R<10>::ctr_type c = {{i, i * 7919u, ~i, i ^ 0xdeadbeefu}};
    r123::Philox4x32_R<10>::key_type k = {{i * 31u, 0x12345678u + i}};
    auto want = ref(c, k);
    auto got = philox4x32_10({c[0], c[1], c[2], c[3]}, {k[0], k[1]});
    for (int j = 0; j < 4; ++j) ASSERT_EQ(got[j], want[j]) << i;
  }
}

TEST(Philox, BlocksAtOnceMatchOneByOne) {
  // Every count from 0 to 37 blocks (the AVX2 kernel's groups of eight and the scalar rest), at offsets
  // where the low counter word wraps inside a group, for seeds and streams with both halves set.
  std::vector<uint32_t> got(4 * 40 + 1);
  for (const CounterRng r : {CounterRng{1, 0}, CounterRng{0x123456789abcdefull, 0xfedcba9876543210ull}})
    for (const uint64_t b0 : {uint64_t{0}, uint64_t{13}, uint64_t{0xFFFFFFFFull - 5}, uint64_t{0x1FFFFFFF0ull}})
      for (uint64_t nb = 0; nb <= 37; ++nb) {
        got.assign(got.size(), 0xA5A5A5A5u);
        philox_blocks(r, b0, nb, got.data());
        for (uint64_t k = 0; k < nb; ++k)
          for (int j = 0; j < 4; ++j) ASSERT_EQ(got[4 * k + j], r.block(b0 + k)[j]) << b0 << " " << nb << " " << k;
        ASSERT_EQ(got[4 * nb], 0xA5A5A5A5u) << "wrote past the end";
      }
}

TEST(Philox, UniformIsInUnitIntervalWithTheRightMean) {
  CounterRng r{42, 7};
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    float u = r.uniform(i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
}

}  // namespace
}  // namespace manylm
