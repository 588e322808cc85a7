#include "driver/operation_gate.h"

#include <atomic>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

namespace gf::driver {
namespace {

TEST(OperationGateTest, AdmitsUntilClosed) {
    OperationGate gate;
    {
        auto token = gate.enter();
        ASSERT_TRUE(token);
    }
    gate.close_and_wait();
    EXPECT_EQ(gate.enter().error(), Error(ENODEV));
    gate.close_and_wait();  // idempotent
}

TEST(OperationGateTest, CloseWaitsForRunningOperations) {
    OperationGate gate;
    std::optional<OperationGate::Token> running;
    running.emplace(*gate.enter());
    std::atomic<bool> closed{false};
    std::thread unbind([&] {
        gate.close_and_wait();
        closed = true;
    });
    // Once new operations are refused, close has started; it cannot finish
    // while `running` is held.
    while (gate.enter()) {
        std::this_thread::yield();
    }
    EXPECT_FALSE(closed.load());
    running.reset();
    unbind.join();
    EXPECT_TRUE(closed.load());
}

TEST(OperationGateTest, ManyThreads) {
    OperationGate gate;
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) {
                if (auto token = gate.enter()) {
                    ++admitted;
                }
            }
        });
    }
    gate.close_and_wait();
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_FALSE(gate.enter());
    EXPECT_GT(admitted.load() + 1, 0);
}

}  // namespace
}  // namespace gf::driver
