// The copies used on memory the device shares: byte-exact at any alignment and length.
#include "base/shared_memory.h"

#include <sys/mman.h>

#include <array>
#include <cstddef>
#include <vector>

#include <gtest/gtest.h>

namespace gf {
namespace {

// Mapped memory, as shared memory always is.
class Mapping {
  public:
    explicit Mapping(size_t size) : size_(size) {
        void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        EXPECT_NE(p, MAP_FAILED);
        base_ = static_cast<std::byte*>(p);
    }
    ~Mapping() { munmap(base_, size_); }
    std::span<std::byte> bytes() { return {base_, size_}; }

  private:
    std::byte* base_;
    size_t size_;
};

std::vector<std::byte> pattern(size_t n, int seed) {
    std::vector<std::byte> out(n);
    for (size_t i = 0; i < n; ++i) {
        out[i] = static_cast<std::byte>(i * 7 + seed);
    }
    return out;
}

TEST(SharedMemoryTest, CopiesRoundTripAtEveryAlignmentAndLength) {
    Mapping shared(4096);
    for (size_t offset : {0u, 1u, 3u, 7u, 8u, 13u}) {
        for (size_t length : {0u, 1u, 7u, 8u, 9u, 40u, 63u, 200u}) {
            const auto in = pattern(length, static_cast<int>(offset));
            fill_shared(shared.bytes(), std::byte{0xEE});
            auto window = shared.bytes().subspan(offset);
            copy_to_shared(window, in);
            // Nothing written outside [offset, offset + length).
            for (size_t i = 0; i < offset; ++i) {
                ASSERT_EQ(shared.bytes()[i], std::byte{0xEE});
            }
            ASSERT_EQ(window[length], std::byte{0xEE}) << offset << " " << length;
            std::vector<std::byte> out(length);
            copy_from_shared(out, window);
            EXPECT_EQ(out, in) << offset << " " << length;
        }
    }
}

// The bulk copies take rep movsb from kBulkMin bytes on (x86-64, no sanitizer): both sides
// of that threshold, unaligned, and nothing written past the end.
TEST(SharedMemoryTest, BulkCopiesRoundTripAtEveryAlignmentAndLength) {
    Mapping shared(1 << 20);
    for (size_t offset : {0u, 1u, 7u, 8u, 4093u}) {
        for (size_t length : {0u, 9u, 255u, 256u, 257u, 4096u, 65537u, (1u << 20) - 8192u}) {
            const auto in = pattern(length, static_cast<int>(offset));
            fill_shared(shared.bytes(), std::byte{0xEE});
            auto window = shared.bytes().subspan(offset);
            copy_to_shared_bulk(window, in);
            for (size_t i = 0; i < offset; ++i) {
                ASSERT_EQ(shared.bytes()[i], std::byte{0xEE});
            }
            ASSERT_EQ(window[length], std::byte{0xEE}) << offset << " " << length;
            std::vector<std::byte> out(length + 1, std::byte{0x11});
            copy_from_shared_bulk(std::span(out).first(length), window);
            EXPECT_EQ(out.back(), std::byte{0x11}) << offset << " " << length;
            out.pop_back();
            EXPECT_EQ(out, in) << offset << " " << length;
        }
    }
}

TEST(SharedMemoryTest, FillCoversEveryByteOfAnUnalignedRange) {
    Mapping shared(256);
    fill_shared(shared.bytes(), std::byte{0});
    fill_shared(shared.bytes().subspan(3, 100), std::byte{0x5A});
    for (size_t i = 0; i < 256; ++i) {
        EXPECT_EQ(shared.bytes()[i], (i >= 3 && i < 103) ? std::byte{0x5A} : std::byte{0}) << i;
    }
}

}  // namespace
}  // namespace gf
