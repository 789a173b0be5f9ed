// The shared contracts of include/l4lb/common/: hash pieces, the table-size
// rule and the text every program prints for addresses. Pure: no EAL.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "l4lb/common/address_text.h"
#include "l4lb/common/hash.h"
#include "l4lb/common/limits.h"
#include "l4lb/common/prime.h"
#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/maglev/maglev.h"

namespace l4lb {
namespace {

// Published FNV-1a 64-bit test vectors: a different basis, prime or byte
// order would change them.
TEST(CommonHash, FnvMatchesPublishedVectors) {
  EXPECT_EQ(fnv1a64(""), 0xCBF29CE484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xAF63DC4C8601EC8Cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171F73967E8ull);
}

TEST(CommonHash, FinaliserIsMurmur3Fmix64) {
  EXPECT_EQ(fmix64(0), 0u);
  EXPECT_EQ(fmix64(1), 0xB456BCFC34C2CB2Cull);
  static_assert(fmix64(1) == 0xB456BCFC34C2CB2Cull, "usable at compile time");
}

// The flow hash and Maglev's backend hash are both built from these pieces;
// pin that composition, so neither drifts from the shared definition.
TEST(CommonHash, FlowAndBackendHashesAreBuiltFromTheSharedPieces) {
  const uint64_t a = (uint64_t{0x0A00000A} << 32) | 0x0A000064;
  const uint64_t b = (uint64_t{1234} << 32) | (uint64_t{80} << 16) | 6;
  EXPECT_EQ(dataplane::maglev_flow_hash(0x0A00000A, 1234, 0x0A000064, 80, 6), fmix64(a ^ fmix64(b + kGoldenGamma)));
  EXPECT_EQ(maglev::hash_key("10.0.0.1:80", maglev::kOffsetSeed),
            fmix64(fnv1a64("10.0.0.1:80", kFnvOffsetBasis ^ fmix64(maglev::kOffsetSeed))));
}

TEST(CommonPrime, TableSizes) {
  EXPECT_FALSE(is_prime(0));
  EXPECT_FALSE(is_prime(1));
  EXPECT_TRUE(is_prime(2));
  EXPECT_TRUE(is_prime(65537));
  EXPECT_FALSE(is_prime(65536));
  EXPECT_FALSE(is_prime(3215031751ull));  // strong pseudoprime to bases 2, 3, 5, 7
  EXPECT_TRUE(is_prime(kMaxTableSize));
  EXPECT_EQ(next_prime(65536), 65537u);
  EXPECT_EQ(next_prime(kMaxTableSize), kMaxTableSize);
}

TEST(CommonLimits, DataPlaneSizesItsArraysByTheSharedWorkerLimit) {
  static_assert(dataplane::kMaxWorkers == kMaxWorkers);
  EXPECT_EQ(kMaxWorkers, 64u);
}

TEST(CommonAddressText, Ipv4EndpointAndMac) {
  EXPECT_EQ(format_ipv4(0x0A000001), "10.0.0.1");
  EXPECT_EQ(format_ipv4(0xFFFFFFFF), "255.255.255.255");
  EXPECT_EQ(format_ipv4(0), "0.0.0.0");
  EXPECT_EQ(format_ipv4_wire(htonl(0xC0A80101)), "192.168.1.1");
  EXPECT_EQ(format_endpoint(0x0A000001, 8080), "10.0.0.1:8080");
  const MacAddress mac{{0x02, 0x00, 0xAB, 0xCD, 0xEF, 0x01}};
  EXPECT_EQ(format_mac(mac), "02:00:ab:cd:ef:01");
  EXPECT_EQ(format_mac(mac.bytes), "02:00:ab:cd:ef:01");
  EXPECT_TRUE(mac == (MacAddress{{0x02, 0x00, 0xAB, 0xCD, 0xEF, 0x01}}));
}

}  // namespace
}  // namespace l4lb
