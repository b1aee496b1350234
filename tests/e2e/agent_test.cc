// bulwark agent end to end with real servers: Debian's Prometheus scrapes
// /metrics, a Pushgateway receives a one-shot backup's push, promtool checks
// and unit-tests the rules of `bulwark alerts`; retention bounds the
// snapshot count; /healthz turns 503 when backups stop; SIGTERM exits 0.
// Servers: `prometheus`, `prometheus-pushgateway`, `promtool` (scripts/
// install-deps --test); skipped when missing. Each runs on a free port of
// 127.0.0.1 in the scratch directory and is stopped by its pid.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "pg_server.h"

namespace bulwark::testing {
namespace {

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A background process stopped (SIGTERM, then reaped) at scope exit.
struct Proc {
  int pid = -1;
  ~Proc() { Stop(); }
  int Stop(int sig = SIGTERM) {
    if (pid <= 0) return -1;
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
};

std::string Get(int port, const std::string& path, int* status = nullptr) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2, 0);
  auto r = c.Get(path);
  if (status) *status = r ? r->status : 0;
  return r ? r->body : "";
}

bool Installed(const char* prog) { return Run({"sh", "-c", std::string("command -v ") + prog}).exit_code == 0; }

// The value of the first sample of `name` whose line contains `filter` in
// exposition `text`; -1 when absent.
double Sample(const std::string& text, const std::string& name, const std::string& filter) {
  size_t pos = 0;
  while ((pos = text.find("\n" + name, pos)) != std::string::npos) {
    size_t end = text.find('\n', pos + 1);
    std::string line = text.substr(pos + 1, end - pos - 1);
    pos = end;
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    if (line.find(filter) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

// Starts `bulwark --config cfg agent` on a free port of 127.0.0.1 with
// --min-slack 1s and `grace`; returns the port agent.json names, 0 if it
// never appeared.
int StartAgent(Proc* agent, const Scratch& s, const std::string& cfg, const std::string& state,
               const std::string& grace) {
  agent->pid = StartBackground({BulwarkBin(), "--config", cfg, "agent", "--state-dir", state, "--listen",
                                "127.0.0.1:0", "--min-slack", "1s", "--shutdown-grace", grace},
                               {"BULWARK_CACHE_DIR=" + s.CacheDir()});
  int port = 0;
  WaitFor(
      [&] {
        auto j = nlohmann::json::parse(ReadFileOr(state + "/agent.json", "null"), nullptr, false);
        if (!j.is_object()) return false;
        std::string listen = j["listen"];
        port = std::stoi(listen.substr(listen.rfind(':') + 1));
        return true;
      },
      30);
  return port;
}

// Starts Prometheus (data in the scratch directory) scraping the agent on
// `target` every second; returns its own port.
int StartPrometheus(Proc* prom, const Scratch& s, int target) {
  const int port = FreePort();
  WriteFile(s.Path("prometheus.yml"),
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n  - job_name: bulwark\n    static_configs:\n"
            "      - targets: ['127.0.0.1:" +
                std::to_string(target) + "']\n");
  prom->pid = StartBackground({"prometheus", "--config.file=" + s.Path("prometheus.yml"),
                               "--storage.tsdb.path=" + s.Path("tsdb"),
                               "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  return port;
}

TEST(AgentE2E, ScheduledCyclesMetricsHealthAlertsAndShutdown) {
  if (!Installed("prometheus") || !Installed("prometheus-pushgateway") || !Installed("promtool"))
    GTEST_SKIP() << "prometheus, prometheus-pushgateway or promtool missing (scripts/install-deps --test)";
  Scratch s;
  s.Init();
  const std::string data = s.Path("data");
  std::filesystem::create_directories(data);
  WriteFile(data + "/a.txt", "hello agent");
  const std::string cfg =
      WriteFile(s.Path("bulwark.yaml"), s.ConfigPrelude() + "sources:\n  docs:\n    kind: fs\n    paths: [" + data +
                                            "]\n    schedule: \"@every 2s\"\n"
                                            "    retention: {keep_last: 3}\n");
  const std::string state = s.Path("state");

  // The agent on a free port (agent.json says which).
  Proc agent;
  const int port = StartAgent(&agent, s, cfg, state, "30s");
  ASSERT_NE(port, 0) << "the agent never wrote agent.json";

  // Prometheus scrapes it every second.
  Proc prom;
  const int prom_port = StartPrometheus(&prom, s, port);
  double successes = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto j =
            nlohmann::json::parse(Get(prom_port, "/api/v1/query?query=bulwark_backup_success_total"), nullptr, false);
        if (!j.is_object() || j.value("status", "") != "success" || j["data"]["result"].empty()) return false;
        successes = std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
        return successes >= 2;
      },
      120, 200))
      << "Prometheus never saw two successful jobs";

  // Retention: after more cycles, at most keep_last snapshots remain.
  std::string metrics;
  ASSERT_TRUE(WaitFor(
      [&] {
        metrics = Get(port, "/metrics");
        return Sample(metrics, "bulwark_backup_success_total", "source=\"docs\"") >= 5;
      },
      120, 200));
  ASSERT_TRUE(WaitFor([&] { return Sample(Get(port, "/metrics"), "bulwark_snapshots", "source=\"docs\"") >= 1; }, 30));
  EXPECT_LE(Sample(Get(port, "/metrics"), "bulwark_snapshots", "source=\"docs\""), 4);  // 3 kept + one in flight
  EXPECT_NE(metrics.find("# TYPE bulwark_drill_last_success gauge"), std::string::npos);
  int status = 0;
  Get(port, "/healthz", &status);
  EXPECT_EQ(status, 200);

  // A one-shot backup pushes to a Pushgateway.
  const int pgw_port = FreePort();
  Proc pgw;
  pgw.pid = StartBackground({"prometheus-pushgateway", "--web.listen-address=127.0.0.1:" + std::to_string(pgw_port)});
  ASSERT_TRUE(WaitFor(
      [&] {
        int st = 0;
        Get(pgw_port, "/-/ready", &st);
        return st == 200;
      },
      30));
  // (--lock-wait: the agent's forget holds an exclusive lock for a moment every 2 s.)
  RunResult b = s.BwConfig(cfg, {"--lock-wait", "30s", "backup", "--source", "docs", "--pushgateway",
                                 "http://127.0.0.1:" + std::to_string(pgw_port)});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string pushed = Get(pgw_port, "/metrics");
  EXPECT_GE(Sample(pushed, "bulwark_backup_last_status", "source=\"docs\""), 1) << pushed;
  EXPECT_NE(pushed.find("job=\"bulwark\""), std::string::npos);
  // check (like forget, prune, copy) pushes its request counters after it
  // succeeded; without --source into the repository's group.
  RunResult chk =
      s.BwConfig(cfg, {"--lock-wait", "30s", "check", "--pushgateway", "http://127.0.0.1:" + std::to_string(pgw_port)});
  ASSERT_EQ(chk.exit_code, 0) << chk.err;
  const std::string after_check = Get(pgw_port, "/metrics");
  EXPECT_NE(after_check.find("repository=\"" + s.repo() + "\""), std::string::npos) << after_check;
  // An unreachable gateway is a warning, not a failure.
  RunResult soft =
      s.BwConfig(cfg, {"--lock-wait", "30s", "backup", "--source", "docs", "--pushgateway", "http://127.0.0.1:1"});
  EXPECT_EQ(soft.exit_code, 0) << soft.err;
  EXPECT_NE(soft.err.find("pushing metrics failed"), std::string::npos) << soft.err;

  // The alert rules pass promtool's check and a unit test.
  RunResult alerts = s.BwConfig(cfg, {"alerts", "--min-slack", "1s"});
  ASSERT_EQ(alerts.exit_code, 0) << alerts.err;
  WriteFile(s.Path("rules.yml"), alerts.out);
  RunResult check = bulwark::testing::Run({"promtool", "check", "rules", s.Path("rules.yml")});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  WriteFile(s.Path("rules_test.yml"), R"(rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'bulwark_backup_last_status{source="docs",repository="main"}'
        values: '1 0 0'
      - series: 'bulwark_backup_last_success_timestamp_seconds{source="docs",repository="main"}'
        values: '0 0 0'
    alert_rule_test:
      - eval_time: 2m
        alertname: BackupJobFailed
        exp_alerts:
          - exp_labels: {severity: critical, source: docs, repository: main}
            exp_annotations:
              summary: "bulwark job of source docs failed"
              description: "The last job of source docs (repository main) failed; see the agent's log or `bulwark run docs --wait`."
      - eval_time: 2m
        alertname: BackupStale
        exp_alerts:
          - exp_labels: {severity: critical, source: docs, repository: main}
            exp_annotations:
              summary: "no fresh backup of source docs"
              description: "The newest complete snapshot of source docs is older than its schedule (@every 2s, every 2 s) plus 1 s of slack."
)");
  RunResult test = bulwark::testing::Run({"sh", "-c", "cd " + s.dir() + " && promtool test rules rules_test.yml"});
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;

  // Backups start failing (the source is gone): /healthz turns 503 naming it.
  std::filesystem::remove_all(data);
  std::string body;
  ASSERT_TRUE(WaitFor(
      [&] {
        body = Get(port, "/healthz", &status);
        return status == 503;
      },
      60, 200));
  auto hj = nlohmann::json::parse(body);
  EXPECT_EQ(hj["failing"][0]["source"], "docs");
  EXPECT_EQ(hj["failing"][0]["check"], "fresh");
  EXPECT_GE(Sample(Get(port, "/metrics"), "bulwark_backup_failure_total", "source=\"docs\""), 1);

  // suspend through the running agent: the source is skipped, healthz green.
  RunResult sus = s.BwConfig(cfg, {"suspend", "docs", "--state-dir", state, "--json"});
  ASSERT_EQ(sus.exit_code, 0) << sus.err;
  EXPECT_EQ(nlohmann::json::parse(sus.out)["via_agent"], true);
  Get(port, "/healthz", &status);
  EXPECT_EQ(status, 200);

  // SIGTERM: a clean exit 0, state saved.
  EXPECT_EQ(agent.Stop(SIGTERM), 0);
  auto st = nlohmann::json::parse(ReadFileOrDie(state + "/scheduler.json"));
  EXPECT_EQ(st["sources"]["docs"]["suspended"], true);
  EXPECT_EQ(st["sources"]["docs"]["running"], false);

  // Every agent job is in the audit log (one record per job, with the
  // snapshot it wrote and those its retention removed), and the chain verifies.
  RunResult audit = s.BwConfig(cfg, {"--json", "audit"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  int jobs_ok = 0, jobs_failed = 0, removed = 0;
  for (const auto& r : audit.Json()) {
    if (r["command"] != "agent job") continue;
    EXPECT_EQ(r["args"][2], "docs");
    if (r["result"] == "ok") {
      ++jobs_ok;
      EXPECT_EQ(r["snapshots_added"].size(), 1u) << r.dump();
    } else {
      ++jobs_failed;
    }
    removed += static_cast<int>(r["snapshots_removed"].size());
  }
  EXPECT_GE(jobs_ok, 5);
  EXPECT_GE(jobs_failed, 1);  // the jobs after the source went away
  EXPECT_GE(removed, 2);      // keep_last 3 of at least 5
  RunResult verify = s.BwConfig(cfg, {"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// The issue's "done when": an fs source and a PostgreSQL source under one
// agent for several scheduled cycles: backups on time, retention applied,
// drills on their own schedule storing evidence, Prometheus scraping,
// /healthz red once a source goes stale, and the audit chain verifying.
TEST(AgentE2E, FsAndPostgresSourcesOverSeveralCyclesWithDrills) {
  if (!Installed("prometheus")) GTEST_SKIP() << "prometheus missing (scripts/install-deps --test)";
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("app"));
  ASSERT_EQ(pg->PgbenchInit("app", 1).exit_code, 0);
  Scratch s;
  s.Init();
  const std::string data = s.Path("data");
  std::filesystem::create_directories(data);
  std::filesystem::create_directories(s.Path("drills"));
  WriteFile(data + "/a.txt", "cycle after cycle");
  const std::string cfg = WriteFile(
      s.Path("bulwark.yaml"),
      s.ConfigPrelude() + "sources:\n  docs:\n    kind: fs\n    paths: [" + data +
          "]\n    schedule: \"@every 3s\"\n    retention: {keep_last: 2}\n"
          "    drill: {schedule: \"@every 5s\", rto: 10m, target: {dir: " +
          s.Path("drills") +
          "}}\n"
          "  app:\n    kind: postgres\n    conninfo: \"" +
          pg->conninfo("app") +
          "\"\n    schedule: \"@every 4s\"\n    retention: {keep_last: 2}\n    drill:\n"
          "      schedule: \"@every 6s\"\n      target: {conninfo: \"" +
          pg->conninfo("postgres") +
          "\", allow_same_server: true}\n"
          "      checks:\n        - {sql: \"SELECT count(*) FROM pgbench_branches\", expect: 1}\n");
  const std::string state = s.Path("state");
  Proc agent;
  const int port = StartAgent(&agent, s, cfg, state, "60s");
  ASSERT_NE(port, 0) << "the agent never wrote agent.json";
  Proc prom;
  const int prom_port = StartPrometheus(&prom, s, port);
  // What Prometheus scraped: the value of `query` for `source`, or -1.
  auto scraped = [&](const std::string& query, const std::string& source) {
    auto j = nlohmann::json::parse(Get(prom_port, "/api/v1/query?query=" + query), nullptr, false);
    if (!j.is_object() || j.value("status", "") != "success") return -1.0;
    for (const auto& r : j["data"]["result"])
      if (r["metric"].value("source", "") == source) return std::stod(r["value"][1].get<std::string>());
    return -1.0;
  };
  // Several cycles of both sources, and a passing drill of each, as Prometheus saw them.
  ASSERT_TRUE(WaitFor(
      [&] {
        return scraped("bulwark_backup_success_total", "docs") >= 4 &&
               scraped("bulwark_backup_success_total", "app") >= 3 &&
               scraped("bulwark_drill_last_success", "docs") == 1 && scraped("bulwark_drill_last_success", "app") == 1;
      },
      300, 250))
      << Get(port, "/metrics");
  const std::string metrics = Get(port, "/metrics");
  EXPECT_EQ(Sample(metrics, "bulwark_backup_failure_total", "source=\"docs\""), 0) << metrics;
  EXPECT_EQ(Sample(metrics, "bulwark_backup_failure_total", "source=\"app\""), 0) << metrics;
  EXPECT_GT(Sample(metrics, "bulwark_drill_duration_seconds", "source=\"app\""), 0) << metrics;
  // Retention: keep_last 2 (+ one a running job may just have added).
  for (const char* src : {"docs", "app"}) {
    const double n = Sample(metrics, "bulwark_snapshots", std::string("source=\"") + src + "\"");
    EXPECT_GE(n, 1) << src;
    EXPECT_LE(n, 3) << src;
  }
  int status = 0;
  std::string health = Get(port, "/healthz", &status);
  EXPECT_EQ(status, 200) << health;

  // docs goes stale (its data is gone, its backups fail): /healthz turns red naming it.
  std::filesystem::remove_all(data);
  ASSERT_TRUE(WaitFor(
      [&] {
        health = Get(port, "/healthz", &status);
        return status == 503;
      },
      60, 200));
  auto hj = nlohmann::json::parse(health);
  ASSERT_EQ(hj["failing"].size(), 1u) << health;
  EXPECT_EQ(hj["failing"][0]["source"], "docs");
  EXPECT_EQ(hj["failing"][0]["check"], "fresh");

  EXPECT_EQ(agent.Stop(SIGTERM), 0);
  prom.Stop();
  // The evidence: drill records of both sources, all passed.
  RunResult drills = s.BwConfig(cfg, {"--json", "drills"});
  ASSERT_EQ(drills.exit_code, 0) << drills.err;
  std::map<std::string, int> passed;
  for (const auto& r : drills.Json()) {
    EXPECT_EQ(r["passed"], true) << r.dump();
    ++passed[r["source"].get<std::string>()];
  }
  EXPECT_GE(passed["docs"], 1);
  EXPECT_GE(passed["app"], 1);
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pg_database WHERE datname LIKE 'bulwark_drill_%'"), "0");
  // Every job and drill is in the audit log, and the chain verifies.
  RunResult audit = s.BwConfig(cfg, {"--json", "audit"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  int jobs = 0, drill_jobs = 0;
  for (const auto& r : audit.Json()) {
    if (r["command"] == "agent job") ++jobs;
    if (r["command"] == "agent drill") ++drill_jobs;
  }
  EXPECT_GE(jobs, 7);
  EXPECT_GE(drill_jobs, 2);
  RunResult verify = s.BwConfig(cfg, {"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST(AgentE2E, RunInProcessWithoutAnAgent) {
  Scratch s;
  s.Init();
  WriteFile(s.Path("a.txt"), "x");
  const std::string cfg = WriteFile(s.Path("bulwark.yaml"), s.ConfigPrelude() +
                                                                "sources:\n  docs:\n    kind: fs\n"
                                                                "    paths: [" +
                                                                s.Path("a.txt") + "]\n");
  RunResult r = s.BwConfig(cfg, {"--json", "run", "docs", "--name", "manual-test", "--state-dir", s.Path("state")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = r.Json();
  EXPECT_EQ(j["status"], "success");
  EXPECT_EQ(j["name"], "manual-test");
  auto st = nlohmann::json::parse(ReadFileOrDie(s.Path("state/scheduler.json")));
  EXPECT_EQ(st["sources"]["docs"]["result"], "success");
  RunResult bad = s.BwConfig(cfg, {"run", "nope", "--state-dir", s.Path("state")});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("unknown source 'nope'"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace bulwark::testing
