// The device server's control socket (docs/vm.md#control-socket): a UNIX stream socket on
// which the host side (a test, a developer) reads and writes BAR1 as the host contexts see
// it, and asks for the device's counters, while the VM runs. One request per connection:
// one line in, one line out.
//
//   read-bar1 OFFSET LENGTH   ->  ok HEX          (LENGTH at most 4096)
//   write-bar1 OFFSET HEX     ->  ok
//   stats                     ->  ok {JSON}
//   anything else, or a failure -> error WHY
//
// OFFSET is a BAR1 offset, decimal or 0x-hex; HEX is the bytes in memory order.
#pragma once

#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/proxy_device.h"

namespace gf::vmm {

inline constexpr size_t kControlMaxLength = 4096;

// The reply to one request line, without its newline.
std::string control_reply(ProxyDevice& device, std::string_view request);

class ControlSocket {
  public:
    // Listens at `path` (an existing socket there is replaced; anything else: EEXIST) and
    // answers on a thread of its own until destroyed, which removes the path.
    static Result<std::unique_ptr<ControlSocket>> listen(ProxyDevice& device, std::string path);
    ~ControlSocket();
    ControlSocket(const ControlSocket&) = delete;
    ControlSocket& operator=(const ControlSocket&) = delete;

  private:
    ControlSocket(ProxyDevice& device, std::string path, UniqueFd listener);
    void run();

    ProxyDevice& device_;
    const std::string path_;
    UniqueFd listener_;
    UniqueFd wake_;  // an eventfd: written to stop run()
    std::thread thread_;
};

// Client side: sends `request` to the socket at `path` and returns the reply line (ECONNREFUSED,
// ENOENT... if there is no server; ETIMEDOUT after 10 s without a reply).
Result<std::string> control_request(const std::string& path, std::string_view request);

}  // namespace gf::vmm
