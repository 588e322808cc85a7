#include "base/result.h"

#include <cerrno>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "base/checked.h"
#include "base/scope_guard.h"

namespace gf {
namespace {

Result<int> parse_positive(int v) {
    if (v <= 0) {
        return fail(EINVAL);
    }
    return v;
}

Result<int> doubled(int v) {
    int x = GF_TRY(parse_positive(v));
    return 2 * x;
}

Result<void> check_even(int v) {
    if (v % 2 != 0) {
        return fail(EDOM);
    }
    return {};
}

Result<std::string> describe(int v) {
    GF_TRY(check_even(v));
    int d = GF_TRY(doubled(v));
    return std::to_string(d);
}

Result<std::unique_ptr<int>> make_owned(int v) {
    if (v < 0) {
        return fail(ENOMEM);
    }
    return std::make_unique<int>(v);
}

Result<int> read_owned(int v) {
    std::unique_ptr<int> p = GF_TRY(make_owned(v));
    return *p + 1;
}

TEST(Result, ValueAndError) {
    Result<int> ok = parse_positive(3);
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, 3);
    Result<int> bad = parse_positive(-1);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().value(), EINVAL);
    EXPECT_EQ(bad.error().negative(), -EINVAL);
}

TEST(Result, TryPropagatesErrorsAndValues) {
    EXPECT_EQ(*doubled(4), 8);
    EXPECT_EQ(doubled(0).error(), Error(EINVAL));
    EXPECT_EQ(*describe(4), "8");
    EXPECT_EQ(describe(3).error(), Error(EDOM));  // void result stops early
    EXPECT_EQ(describe(-2).error(), Error(EINVAL));
}

TEST(Result, TryMovesOnlyTypes) {
    EXPECT_EQ(*read_owned(41), 42);
    EXPECT_EQ(read_owned(-1).error(), Error(ENOMEM));
}

TEST(Result, ErrorIsAlwaysPositive) {
    // A zero or negative "errno" would read as success at the ioctl boundary.
    EXPECT_EQ(Error(0).value(), EINVAL);
    EXPECT_EQ(Error(-5).value(), EINVAL);
    EXPECT_EQ(Error(ENOTTY).value(), ENOTTY);
}

TEST(Result, NegativeErrnoAtTheBoundary) {
    EXPECT_EQ(to_negative_errno(check_even(2)), 0);
    EXPECT_EQ(to_negative_errno(check_even(1)), -EDOM);
    EXPECT_EQ(to_negative_errno(parse_positive(1)), 0);
    EXPECT_EQ(to_negative_errno(parse_positive(0)), -EINVAL);
}

TEST(Checked, AddAndMultiply) {
    EXPECT_EQ(*checked_add(1, 2), 3u);
    EXPECT_EQ(*checked_add(UINT64_MAX - 1, 1), UINT64_MAX);
    EXPECT_EQ(checked_add(UINT64_MAX, 1).error(), Error(EOVERFLOW));
    EXPECT_EQ(*checked_mul(1ull << 31, 1ull << 32), 1ull << 63);
    EXPECT_EQ(checked_mul(1ull << 32, 1ull << 32).error(), Error(EOVERFLOW));
}

TEST(Checked, RangeWithin) {
    EXPECT_TRUE(range_within(0, 16, 16));
    EXPECT_TRUE(range_within(16, 0, 16));
    EXPECT_FALSE(range_within(1, 16, 16));
    EXPECT_FALSE(range_within(UINT64_MAX, 2, UINT64_MAX));  // the sum wraps
}

TEST(ScopeGuard, RunsUnlessDismissed) {
    int runs = 0;
    {
        ScopeGuard g([&] { ++runs; });
    }
    EXPECT_EQ(runs, 1);
    {
        ScopeGuard g([&] { ++runs; });
        g.dismiss();
    }
    EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace gf
