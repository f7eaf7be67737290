#include "mirror/host_address.h"

#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <memory>

#include "ovs-plugin/netns.h"

namespace vpcguard::mirror {
namespace {

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct AddrFree {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrFree {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct LinkFree {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};

std::string nlError(int code) { return nl_geterror(code); }

// A route netlink socket opened in `netns`: the socket stays in that namespace.
Result<std::unique_ptr<nl_sock, SockFree>> routeSocket(const std::optional<std::string>& netns) {
  std::unique_ptr<nl_sock, SockFree> sock(nl_socket_alloc());
  if (!sock) {
    return makeError("netlink: out of memory");
  }
  int rc = 0;
  auto entered = ovs::inNetns(netns, [&] { rc = nl_connect(sock.get(), NETLINK_ROUTE); });
  if (!entered) {
    return tl::unexpected(entered.error());
  }
  if (rc < 0) {
    return makeError("netlink connect: " + nlError(rc));
  }
  return sock;
}

// The address object for `address` on `device`.
Result<std::unique_ptr<rtnl_addr, AddrFree>> addressOn(nl_sock* sock, const std::string& device,
                                                       const std::string& address) {
  rtnl_link* raw_link = nullptr;
  if (int rc = rtnl_link_get_kernel(sock, 0, device.c_str(), &raw_link); rc < 0) {
    return makeError("device " + device + ": " + nlError(rc));
  }
  std::unique_ptr<rtnl_link, LinkFree> link(raw_link);
  nl_addr* raw_local = nullptr;
  if (int rc = nl_addr_parse(address.c_str(), AF_INET, &raw_local); rc < 0) {
    return makeError("address " + address + ": " + nlError(rc));
  }
  std::unique_ptr<nl_addr, NlAddrFree> local(raw_local);
  std::unique_ptr<rtnl_addr, AddrFree> addr(rtnl_addr_alloc());
  if (!addr) {
    return makeError("netlink: out of memory");
  }
  rtnl_addr_set_ifindex(addr.get(), rtnl_link_get_ifindex(link.get()));
  if (int rc = rtnl_addr_set_local(addr.get(), local.get()); rc < 0) {
    return makeError("address " + address + ": " + nlError(rc));
  }
  return addr;
}

// Runs `change` with a socket in `netns` and the address object for `address` on `device`.
template <typename Change>
Result<void> changeAddress(const std::optional<std::string>& netns, const std::string& device,
                           const std::string& address, Change change) {
  auto sock = routeSocket(netns);
  if (!sock) {
    return tl::unexpected(sock.error());
  }
  auto addr = addressOn(sock->get(), device, address);
  if (!addr) {
    return tl::unexpected(addr.error());
  }
  return change(sock->get(), addr->get());
}

}  // namespace

Result<void> addDeviceAddress(const std::optional<std::string>& netns, const std::string& device,
                              const std::string& address) {
  return changeAddress(netns, device, address, [&](nl_sock* sock, rtnl_addr* addr) -> Result<void> {
    if (int rc = rtnl_addr_add(sock, addr, NLM_F_REPLACE); rc < 0 && rc != -NLE_EXIST) {
      return makeError("add " + address + " to " + device + ": " + nlError(rc));
    }
    return {};
  });
}

Result<void> removeDeviceAddress(const std::optional<std::string>& netns, const std::string& device,
                                 const std::string& address) {
  return changeAddress(netns, device, address, [&](nl_sock* sock, rtnl_addr* addr) -> Result<void> {
    if (int rc = rtnl_addr_delete(sock, addr, 0);
        rc < 0 && rc != -NLE_NOADDR && rc != -NLE_OBJ_NOTFOUND) {
      return makeError("remove " + address + " from " + device + ": " + nlError(rc));
    }
    return {};
  });
}

}  // namespace vpcguard::mirror
