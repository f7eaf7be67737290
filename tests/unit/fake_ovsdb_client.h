#pragma once
// A stateful stand-in for OvsdbClient: tests queue monitor updates and replies and read back
// the transactions that were sent.
#include <deque>
#include <string>
#include <vector>

#include "ovs-plugin/ovsdb_client.h"

namespace vpcguard::ovs {

class FakeOvsdbClient final : public OvsdbClient {
 public:
  // What the fake answers, in order; an empty queue answers transact with `[]`.
  std::deque<Result<Json>> transact_replies;
  std::vector<Json> transactions;  // operations received
  Json monitor_initial = Json::object();
  std::deque<OvsdbUpdate> pending_updates;
  bool is_connected = true;

  Result<Json> transact(const std::string& /*db*/, const Json& operations) override {
    transactions.push_back(operations);
    if (transact_replies.empty()) {
      return Json::array();
    }
    auto r = std::move(transact_replies.front());
    transact_replies.pop_front();
    return r;
  }
  Result<Json> monitor(const std::string& /*db*/, const std::string& id,
                       const MonitorTables& /*tables*/) override {
    monitor_id = id;
    return monitor_initial;
  }
  Result<void> monitorCancel(const std::string& /*id*/) override { return {}; }
  Result<std::vector<std::string>> listDbs() override {
    return std::vector<std::string>{"Open_vSwitch"};
  }
  Result<std::vector<OvsdbUpdate>> poll(std::chrono::milliseconds /*timeout*/) override {
    if (!is_connected) {
      return makeError("fake: disconnected");
    }
    std::vector<OvsdbUpdate> out(pending_updates.begin(), pending_updates.end());
    pending_updates.clear();
    return out;
  }
  int fd() const override { return -1; }
  bool connected() const override { return is_connected; }
  std::string target() const override { return "fake:"; }

  std::string monitor_id;
};

}  // namespace vpcguard::ovs
