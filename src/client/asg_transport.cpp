#include "client/asg_transport.h"

#include <sys/mman.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "base/unique_fd.h"

namespace gf::client {
namespace {

class FdTransport final : public AsgTransport {
  public:
    explicit FdTransport(Session session) : session_(std::move(session)) {}

    Result<void> create_context() override {
        return session_->create_context(hw::ContextType::Graphics);
    }
    Result<Ping> command(uint64_t metadata, uint64_t size) override {
        return session_->ping(metadata, 0, size);
    }
    Result<void> claim_shared(uint64_t offset, uint64_t size) override {
        return session_->claim_shared(offset, size);
    }
    Result<void> unclaim_shared(uint64_t offset) override {
        return session_->unclaim_shared(offset);
    }
    Result<std::byte*> map(uint64_t offset, uint64_t size) override {
        // The reference asks for PROT_WRITE alone; x86 makes that readable anyway, and a
        // node need not know it, so read is asked for too.
        Mapping mapping = GF_TRY(session_->map(offset, size, PROT_READ | PROT_WRITE));
        std::byte* memory = mapping.data();
        mappings_.push_back(std::move(mapping));
        return memory;
    }
    void unmap(std::byte* memory, uint64_t) override {
        auto it = std::find_if(mappings_.begin(), mappings_.end(),
                               [&](const Mapping& m) { return m.data() == memory; });
        if (it != mappings_.end()) {
            mappings_.erase(it);
        }
    }
    Result<void> close() override {
        mappings_.clear();
        session_.reset();  // the file closes once nothing else shares it
        return {};
    }
    int fd() const override { return session_ ? session_->fd() : -1; }

  private:
    std::optional<Session> session_;
    std::vector<Mapping> mappings_;
};

}  // namespace

std::unique_ptr<AsgTransport> fd_transport(Session session) {
    return std::make_unique<FdTransport>(std::move(session));
}

}  // namespace gf::client
