#include "node/traffic.h"

#include <atomic>
#include <cerrno>
#include <random>
#include <vector>

#include "client/host_memory.h"
#include "client/session.h"

namespace gf::testing {
namespace {

// The errnos a client sees once the daemon is gone: its files revoked
// (ENODEV), the FUSE connection aborted (ECONNABORTED) or unmounted (ENOTCONN).
bool daemon_gone(const Error& e) {
    return e.value() == ENODEV || e.value() == ECONNABORTED || e.value() == ENOTCONN;
}

}  // namespace

int random_traffic(const std::string& node, uint64_t seed, long ioctls, uint64_t* calls_made) {
    auto session = client::Session::open(node);
    auto five = client::HostMemoryAllocator::open(node, false);
    auto six = client::HostMemoryAllocator::open(node, true);
    for (const Error* e : {session ? nullptr : &session.error(), five ? nullptr : &five.error(),
                           six ? nullptr : &six.error()}) {
        if (e != nullptr) {
            return daemon_gone(*e) || e->value() == ENOENT ? kDaemonGone : 1;
        }
    }
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> blocks, claims;
    std::vector<client::HostAllocation> host;
    // Each case yields the call's error, if any, and whether the answer was right.
    auto check = [](const auto& result, bool right, int code) -> int {
        if (!result) {
            return daemon_gone(result.error()) ? kDaemonGone : code;
        }
        return right ? 0 : code;
    };
    for (long i = 0; ioctls < 0 || i < ioctls; ++i) {
        int rc = 0;
        switch (rng() % 9) {
            case 0: {
                auto b = session->allocate_block(1 + rng() % 65536);
                rc = check(b, true, 2);
                if (b) {
                    blocks.push_back(b->offset);
                }
                break;
            }
            case 1:
                if (!blocks.empty()) {
                    size_t k = rng() % blocks.size();
                    rc = check(session->deallocate_block(blocks[k]), true, 3);
                    blocks.erase(blocks.begin() + static_cast<long>(k));
                } else {
                    auto r = session->deallocate_block(rng());
                    rc = r                            ? 4
                         : daemon_gone(r.error())     ? kDaemonGone
                         : r.error().value() == ENXIO ? 0
                                                      : 4;
                }
                break;
            case 2: {
                auto p = session->ping(0xdead, rng() % 4096, 0);  // no context: create fails
                rc = check(p, p && p->metadata == ~0ull, 5);
                break;
            }
            case 3: {
                uint64_t offset = (rng() % (1u << 20)) * 4096;
                bool taken = false;
                for (uint64_t c : claims) {
                    taken |= c == offset;
                }
                auto r = session->claim_shared(offset, 4096);
                if (!r && daemon_gone(r.error())) {
                    rc = kDaemonGone;
                } else if (r.has_value() == taken || (!r && r.error().value() != EINVAL)) {
                    rc = 6;
                } else if (r) {
                    claims.push_back(offset);
                }
                break;
            }
            case 4:
                if (!claims.empty()) {
                    rc = check(session->unclaim_shared(claims.back()), true, 7);
                    claims.pop_back();
                }
                break;
            case 5:
            case 6: {
                auto& allocator = rng() % 2 ? *five : *six;
                if (host.size() < 8) {
                    auto a = allocator.allocate(1 + rng() % (256 << 10));
                    rc = check(a, true, 8);
                    if (a) {
                        host.push_back(std::move(*a));
                    }
                }
                break;
            }
            case 7:
            case 8:
                if (!host.empty()) {
                    size_t k = rng() % host.size();
                    rc = check(host[k].free(), true, 9);
                    host.erase(host.begin() + static_cast<long>(k));
                }
                break;
        }
        if (rc != 0) {
            return rc;
        }
        if (calls_made != nullptr) {
            std::atomic_ref<uint64_t>(*calls_made)
                .store(static_cast<uint64_t>(i) + 1, std::memory_order_release);
        }
    }
    return 0;
}

}  // namespace gf::testing
