// Bar1Bindings on a real window and real memfds: what a user maps of its own file and what
// the host sees through the window are the same pages exactly where a range is bound.
#include "device/bar1_bindings.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "device/bar1_memory.h"

namespace gf::device {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kWindow = 64ull << 20;

// A user's memory file as the platform makes one: sealed against resizing, sealable.
UniqueFd memory_file() {
    UniqueFd fd(::memfd_create("bar1-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    EXPECT_TRUE(fd);
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(kWindow)), 0);
    EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK), 0);
    return fd;
}

Mapping map_user(int fd, uint64_t offset, uint64_t size) {
    void* p =
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(offset));
    EXPECT_NE(p, MAP_FAILED);
    return p == MAP_FAILED ? Mapping() : Mapping(p, size);
}

uint64_t load(const std::byte* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
void store(std::byte* p, uint64_t v) {
    std::memcpy(p, &v, sizeof v);
}

class Bar1BindingsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        void* p = ::mmap(nullptr, kWindow, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        ASSERT_NE(p, MAP_FAILED);
        window_ = Mapping(p, kWindow);
    }
    std::byte* at(uint64_t offset) { return window_.data() + offset; }

    Mapping window_;
    Bar1Bindings bindings_{std::span<std::byte>(), kPage, 16};
    Bar1Bindings& make(size_t max = 64) {
        bindings_ = Bar1Bindings(std::span(window_.data(), kWindow), kPage, max);
        return bindings_;
    }
};

TEST_F(Bar1BindingsTest, BoundRangeIsSharedBothWaysAndStartsZeroed) {
    Bar1Bindings& b = make();
    UniqueFd fd = memory_file();
    Mapping user = map_user(fd.get(), 0x10000, 2 * kPage);
    store(user.data(), 0x5c5c);  // scribbled before the range was the user's
    ASSERT_TRUE(b.bind(1, fd.get(), 0x10000, 2 * kPage, /*move_in=*/false));
    EXPECT_EQ(load(user.data()), 0u) << "a block starts zeroed";
    store(user.data() + kPage + 8, 0xa1a1);
    EXPECT_EQ(load(at(0x10000 + kPage + 8)), 0xa1a1u);
    store(at(0x10000), 0xb2b2);
    EXPECT_EQ(load(user.data()), 0xb2b2u);
    EXPECT_EQ(b.file_at(0x10000 + kPage), std::optional<Bar1FileId>(1));
    EXPECT_EQ(b.bound_bytes(), 2 * kPage);
}

TEST_F(Bar1BindingsTest, AnotherFileAtTheSameOffsetSeesOnlyItsOwnZeros) {
    Bar1Bindings& b = make();
    UniqueFd a = memory_file(), other = memory_file();
    ASSERT_TRUE(b.bind(1, a.get(), 0, kPage, false));
    Mapping ua = map_user(a.get(), 0, kPage), uo = map_user(other.get(), 0, kPage);
    store(ua.data(), 0xaaaa);
    EXPECT_EQ(load(uo.data()), 0u);
    store(uo.data(), 0xbbbb);
    EXPECT_EQ(load(ua.data()), 0xaaaau);
    EXPECT_EQ(load(at(0)), 0xaaaau);
}

TEST_F(Bar1BindingsTest, UnbindLeavesStaleMappingsWithZerosAndTheNextOwnerStartsClean) {
    Bar1Bindings& b = make();
    UniqueFd a = memory_file(), next = memory_file();
    ASSERT_TRUE(b.bind(1, a.get(), kPage, kPage, false));
    Mapping ua = map_user(a.get(), kPage, kPage);
    store(ua.data(), 0xaaaa);
    EXPECT_TRUE(b.unbind(1, kPage, kPage));
    EXPECT_EQ(load(ua.data()), 0u);
    EXPECT_EQ(load(at(kPage)), 0u);
    ASSERT_TRUE(b.bind(2, next.get(), kPage, kPage, false));
    Mapping un = map_user(next.get(), kPage, kPage);
    store(un.data(), 0xcccc);
    EXPECT_EQ(load(ua.data()), 0u) << "the stale mapping never sees the next owner's data";
    EXPECT_EQ(load(at(kPage)), 0xccccu);
    EXPECT_FALSE(b.unbind(1, kPage, kPage)) << "only the owner takes its range out";
}

TEST_F(Bar1BindingsTest, MovedInHostMemoryGoesBackWithTheUsersStores) {
    Bar1Bindings& b = make();
    UniqueFd fd = memory_file();
    store(at(0x20000), 0x4444);  // the host filled a slot
    ASSERT_TRUE(b.bind(1, fd.get(), 0x20000, kPage, /*move_in=*/true));
    Mapping user = map_user(fd.get(), 0x20000, kPage);
    EXPECT_EQ(load(user.data()), 0x4444u);
    store(user.data() + 16, 0x5555);
    EXPECT_TRUE(b.unbind(1, 0x20000, kPage));
    EXPECT_EQ(load(at(0x20000)), 0x4444u);
    EXPECT_EQ(load(at(0x20000 + 16)), 0x5555u);
    EXPECT_EQ(load(user.data() + 16), 0u) << "the user's pages are gone";
    store(user.data(), 0x6666);
    EXPECT_EQ(load(at(0x20000)), 0x4444u);
}

// Retiring runs through Bar1Memory, which steps through the bindings under its lock.
class Bar1RetireTest : public ::testing::Test {
  protected:
    uint64_t load_host(uint64_t offset) {
        std::byte bytes[8];
        EXPECT_TRUE(bar1_->copy_out(offset, bytes));
        return load(bytes);
    }
    void store_host(uint64_t offset, uint64_t value) {
        std::byte bytes[8];
        store(bytes, value);
        EXPECT_TRUE(bar1_->copy_in(offset, bytes));
    }
    std::unique_ptr<Bar1Memory> bar1_ = Bar1Memory::create(kWindow, 64).value();
};

TEST_F(Bar1RetireTest, RetireWaitsForTheLastWritableMapping) {
    UniqueFd fd = memory_file();
    store_host(0x30000, 0x7777);
    ASSERT_TRUE(bar1_->bind_file(1, fd.get(), 0, kPage, false));
    ASSERT_TRUE(bar1_->bind_file(1, fd.get(), 0x30000, kPage, true));
    Mapping user = map_user(fd.get(), 0, kPage);
    store(user.data(), 0x1234);
    auto first = bar1_->retire_file(1, fd.get());
    ASSERT_TRUE(first);
    EXPECT_FALSE(*first);
    // Nothing changed: still shared both ways.
    EXPECT_EQ(load_host(0), 0x1234u);
    store_host(8, 0x99);
    EXPECT_EQ(load(user.data() + 8), 0x99u);
    EXPECT_EQ(bar1_->bound_count(), 2u);
    EXPECT_EQ(bar1_->seal_checks(), 1u);
    EXPECT_EQ(bar1_->remap_failures(), 0u);
    user.reset();
    auto second = bar1_->retire_file(1, fd.get());
    ASSERT_TRUE(second);
    EXPECT_TRUE(*second);
    EXPECT_EQ(bar1_->bound_count(), 0u);
    EXPECT_EQ(load_host(0), 0u) << "a block's memory leaves the window";
    EXPECT_EQ(load_host(0x30000), 0x7777u) << "held memory goes back to the host";
}

TEST_F(Bar1RetireTest, AFileWithoutBindingsIsRetiredWithoutASeal) {
    UniqueFd fd = memory_file();
    Mapping user = map_user(fd.get(), 0, kPage);
    EXPECT_TRUE(*bar1_->retire_file(1, fd.get()));
    EXPECT_EQ(bar1_->seal_checks(), 0u);
}

TEST_F(Bar1RetireTest, ReadOnlyMappingsOfAWritableFileStillCount) {
    UniqueFd fd = memory_file();
    ASSERT_TRUE(bar1_->bind_file(1, fd.get(), 0, kPage, false));
    void* p = ::mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED);
    Mapping ro(p, kPage);
    auto r = bar1_->retire_file(1, fd.get());
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r) << "it could be mprotect'ed writable again";
    ro.reset();
    EXPECT_TRUE(*bar1_->retire_file(1, fd.get()));
}

// The steps themselves: what the host writes while a range is parked.
TEST_F(Bar1BindingsTest, UnparkingMovedInMemoryCarriesTheHostsWritesIntoTheFile) {
    Bar1Bindings& b = make();
    UniqueFd fd = memory_file();
    store(at(0x20000), 0x4444);
    ASSERT_TRUE(b.bind(1, fd.get(), 0x20000, kPage, /*move_in=*/true));
    Mapping user = map_user(fd.get(), 0x20000, kPage);
    ASSERT_TRUE(b.park(1, 0x20000));
    EXPECT_EQ(load(at(0x20000)), 0x4444u) << "the host works on a copy";
    store(at(0x20000 + 8), 0x5555);  // the host, while parked
    EXPECT_EQ(load(user.data() + 8), 0u) << "not shared while parked";
    ASSERT_TRUE(b.unpark(1, 0x20000));
    EXPECT_EQ(load(user.data() + 8), 0x5555u) << "the host's write reached the file";
    store(user.data() + 16, 0x6666);
    EXPECT_EQ(load(at(0x20000 + 16)), 0x6666u) << "shared again";
}

TEST_F(Bar1BindingsTest, UnparkingABlockKeepsTheUsersPages) {
    Bar1Bindings& b = make();
    UniqueFd fd = memory_file();
    ASSERT_TRUE(b.bind(1, fd.get(), 0, kPage, false));
    Mapping user = map_user(fd.get(), 0, kPage);
    store(user.data(), 0x1111);
    ASSERT_TRUE(b.park(1, 0));
    store(user.data(), 0x2222);  // the user, while parked
    ASSERT_TRUE(b.unpark(1, 0));
    EXPECT_EQ(load(at(0)), 0x2222u);
    store(at(8), 0x3333);
    EXPECT_EQ(load(user.data() + 8), 0x3333u);
}

TEST_F(Bar1BindingsTest, AParkedBindingCanBeTakenOutLikeAnyOther) {
    Bar1Bindings& b = make();
    UniqueFd fd = memory_file();
    ASSERT_TRUE(b.bind(1, fd.get(), 0, kPage, false));
    ASSERT_TRUE(b.bind(1, fd.get(), kPage, kPage, false));
    Mapping user = map_user(fd.get(), 0, 2 * kPage);
    store(user.data(), 0x1111);
    store(user.data() + kPage, 0x2222);
    ASSERT_TRUE(b.park(1, 0));
    ASSERT_TRUE(b.park(1, kPage));
    b.drop_overlapping(0, kPage);  // the device freed the memory under one of them
    EXPECT_EQ(load(user.data()), 0u) << "the file's pages went";
    EXPECT_EQ(load(at(0)), 0u);
    b.punch(kPage, kPage);
    EXPECT_EQ(load(user.data() + kPage), 0u);
    EXPECT_EQ(b.unpark(1, 0).error().value(), ENOENT);
    ASSERT_TRUE(b.unpark(1, kPage));
    EXPECT_EQ(b.count(), 1u);
}

TEST_F(Bar1BindingsTest, RefusesBadRangesOverlapsAndTooManyBindings) {
    Bar1Bindings& b = make(/*max=*/3);
    UniqueFd fd = memory_file();
    EXPECT_EQ(b.bind(1, fd.get(), 1, kPage, false).error().value(), EINVAL);
    EXPECT_EQ(b.bind(1, fd.get(), 0, kPage + 1, false).error().value(), EINVAL);
    EXPECT_EQ(b.bind(1, fd.get(), 0, 0, false).error().value(), EINVAL);
    EXPECT_EQ(b.bind(1, fd.get(), kWindow - kPage, 2 * kPage, false).error().value(), EINVAL);
    EXPECT_EQ(b.bind(1, fd.get(), ~0ull & ~(kPage - 1), 2 * kPage, false).error().value(), EINVAL);
    ASSERT_TRUE(b.bind(1, fd.get(), 4 * kPage, 4 * kPage, false));
    EXPECT_EQ(b.bind(2, fd.get(), 5 * kPage, kPage, false).error().value(), EBUSY);
    EXPECT_EQ(b.bind(2, fd.get(), 0, 5 * kPage, false).error().value(), EBUSY);
    EXPECT_EQ(b.bind(2, fd.get(), 7 * kPage, 8 * kPage, false).error().value(), EBUSY);
    ASSERT_TRUE(b.bind(1, fd.get(), 0, kPage, false));
    ASSERT_TRUE(b.bind(1, fd.get(), kPage, kPage, false));
    EXPECT_EQ(b.bind(1, fd.get(), 2 * kPage, kPage, false).error().value(), ENOMEM);
}

TEST_F(Bar1BindingsTest, DropOverlappingTakesOutWhateverTouchesTheRange) {
    Bar1Bindings& b = make();
    UniqueFd a = memory_file(), c = memory_file();
    ASSERT_TRUE(b.bind(1, a.get(), 0, 2 * kPage, false));
    ASSERT_TRUE(b.bind(2, c.get(), 2 * kPage, kPage, false));
    ASSERT_TRUE(b.bind(1, a.get(), 4 * kPage, kPage, false));
    b.drop_overlapping(kPage, 2 * kPage);  // the middle of the first, all of the second
    EXPECT_EQ(b.count(), 1u);
    EXPECT_EQ(b.file_at(4 * kPage), std::optional<Bar1FileId>(1));
    b.forget(1);
    EXPECT_EQ(b.count(), 0u);
    EXPECT_EQ(b.bound_bytes(), 0u);
}

}  // namespace
}  // namespace gf::device
