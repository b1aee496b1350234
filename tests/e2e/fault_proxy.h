// A fault-injecting HTTP proxy in front of an S3 test server, for end-to-end
// tests of retries (scripts/s3-server.d/fault-proxy.js; docs/S3-TEST-SERVER.md).
// It forwards every request unchanged and, on a deterministic seeded
// schedule, drops connections, answers 500/503 SlowDown/429, stalls or
// truncates response bodies; it logs one line per request, with the headers
// the client sent. Started as a child process (node) listening on a 127.0.0.1
// port from the kernel; stopped by PID when the FaultProxy is destroyed (and
// it exits by itself once the test process is gone).
//
//   auto proxy = FaultProxy::Start(s3->endpoint(), &why);
//   if (!proxy) GTEST_SKIP() << why;
//   proxy->SetSchedule(FaultSchedule().Seed(7).Rate(0.2));
//   ... run bulwark against "s3://" + HostPort(proxy->endpoint()) + "/bucket/prefix" ...
//   EXPECT_GT(FaultCounts(proxy->Requests())["truncate"], 0);
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bulwark::testing {

// What the proxy breaks. Fault kinds (fault-proxy.js has the details):
// "drop", "drop-request", "500", "503", "429", "stall", "stall-body",
// "truncate" (the default set), and, only when named, "403" (AccessDenied) and
// "stall-request" (half the upload forwarded, then held: the client is stuck
// mid-upload until it is killed or gives up).
struct FaultSchedule {
  uint64_t seed = 1;
  double rate = 0;                    // share of eligible requests faulted, 0..1
  std::vector<std::string> kinds;     // empty = the default set
  std::vector<std::string> methods;   // eligible methods; empty = all
  std::string path_regex;             // eligible request targets (JavaScript RegExp); empty = all
  std::vector<std::string> sequence;  // faults for the first eligible requests ("none" = pass), then `rate`

  // Chainable setters: FaultSchedule().Rate(1).Kinds({"503"}).Methods({"PUT"}).
  FaultSchedule& Seed(uint64_t v) { return seed = v, *this; }
  FaultSchedule& Rate(double v) { return rate = v, *this; }
  FaultSchedule& Kinds(std::vector<std::string> v) { return kinds = std::move(v), *this; }
  FaultSchedule& Methods(std::vector<std::string> v) { return methods = std::move(v), *this; }
  FaultSchedule& PathRegex(std::string v) { return path_regex = std::move(v), *this; }
  FaultSchedule& Sequence(std::vector<std::string> v) { return sequence = std::move(v), *this; }
  nlohmann::json ToJson() const;
};

// One request as the proxy saw it (one line of its log).
struct ProxiedRequest {
  int64_t seq = 0;
  std::string method, path, query;             // path as sent ("/bucket/prefix/data/ab/ab12..."), raw query
  std::map<std::string, std::string> headers;  // names lower-case; no authorization
  std::string fault;                           // "none" or the kind injected
  int upstream_status = 0;                     // the server's answer; 0 if not forwarded or none came
  int status = 0;                              // what the client was sent; 0 if nothing
  std::string Header(const std::string& lower_name) const;  // "" if absent
};

// Requests by fault kind ("none" included).
std::map<std::string, int> FaultCounts(const std::vector<ProxiedRequest>& requests);

class FaultProxy {
 public:
  // Starts node fault-proxy.js in front of `upstream` ("http://127.0.0.1:PORT")
  // with `schedule`, and waits until it accepts connections. On failure
  // returns null and sets *why (no node: a skip, as for S3Server).
  static std::unique_ptr<FaultProxy> Start(const std::string& upstream, std::string* why,
                                           const FaultSchedule& schedule = {});
  ~FaultProxy();  // SIGTERM by PID, then waits for it
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:PORT
  // Replaces the schedule (the draws and the per-kind counts start over).
  // Fails the test (ADD_FAILURE) if the proxy refuses it.
  void SetSchedule(const FaultSchedule& schedule) const;
  // Every request so far, in the order the proxy decided on them. A request
  // is logged before its client sees any of the answer, so after a bulwark
  // command has exited all of its requests are here.
  std::vector<ProxiedRequest> Requests() const;
  std::string Log() const;  // the proxy's own stdout/stderr

 private:
  FaultProxy() = default;
  std::string dir_, endpoint_;
  int pid_ = 0;
};

}  // namespace bulwark::testing
