// Random UAPI traffic from one client process, for the node's load tests.
#pragma once

#include <cstdint>
#include <string>

namespace gf::testing {

// What random_traffic() returns besides 0 (every answer was the expected one)
// and small positive codes naming the first wrong answer.
inline constexpr int kDaemonGone = 100;  // a call failed because the daemon went away

// Opens the node three times (plain, a type-5 and a type-6 host-memory
// context) and makes `ioctls` random calls (forever if negative): blocks,
// claims, pings, host allocations and frees, each answer checked. Whatever is
// held at the end is left for release to clean up. If `calls_made` is given, the number of
// calls made so far is stored there after each (atomically: a parent may be watching it
// through shared memory).
int random_traffic(const std::string& node, uint64_t seed, long ioctls,
                   uint64_t* calls_made = nullptr);

}  // namespace gf::testing
