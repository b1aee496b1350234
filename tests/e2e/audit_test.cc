// End-to-end tests of the audit log (docs/AUDIT.md): every command that
// opens a repository appends a record with its redacted arguments, result
// and snapshot ids; `audit verify` names a tampered record.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "harness.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// The records `audit --json` lists.
nlohmann::json AuditList(const Scratch& s, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--json", "audit"};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = s.Bw(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = r.Json();
  EXPECT_TRUE(j.is_array()) << r.out;
  return j;
}

TEST(AuditCli, EveryOperationIsRecordedWithResultSnapshotsAndNoSecret) {
  Scratch s;
  s.Init();
  const std::string password = Trim(ReadFileOrDie(s.Path("password")));
  ASSERT_FALSE(password.empty());
  fs::create_directories(s.Path("src"));
  WriteFile(s.Path("src/a.txt"), "audited");

  RunResult b1 = s.Bw({"--json", "backup", s.Path("src")});
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  std::string first = b1.JsonLine("summary")["snapshot_id"];
  // A command line holding a PGPASSWORD-like secret (a dump command).
  const std::string pg_secret = "PGSECRET-4b1d";
  RunResult b2 = s.Bw({"--json", "backup", "--stdin-from-command", "--stdin-name", "dump.sql", "--", "sh", "-c",
                       "PGPASSWORD=" + pg_secret + " echo dumped"});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  std::string second = b2.JsonLine("summary")["snapshot_id"];
  // A conninfo with a password is refused before the repository is opened:
  // no record (nothing to record it with), and the secret appears nowhere.
  const std::string conn_secret = "CONNSECRET-77aa";
  RunResult pg = s.Bw({"backup", "--postgres", "host=/nonexistent-bulwark-socket dbname=x password=" + conn_secret});
  EXPECT_EQ(pg.exit_code, 2) << pg.err;
  RunResult f = s.Bw({"--json", "forget", first});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  RunResult c = s.Bw({"check"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  RunResult missing = s.Bw({"restore", "0123456789abcdef", "--target", s.Path("out")});
  EXPECT_NE(missing.exit_code, 0);

  RunResult listing = s.Bw({"--json", "audit"});
  ASSERT_EQ(listing.exit_code, 0) << listing.err;
  RunResult text = s.Bw({"audit"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const std::string& secret : {password, pg_secret, conn_secret}) {
    EXPECT_EQ(listing.out.find(secret), std::string::npos) << secret << " in " << listing.out;
    EXPECT_EQ(text.out.find(secret), std::string::npos) << secret << " in " << text.out;
  }
  // Nor anywhere in the repository's records, in the clear.
  for (const auto& obj : Objects(s.repo() + "/audit"))
    EXPECT_EQ(ReadFileOrDie(obj).find("dump.sql"), std::string::npos) << "records are encrypted";

  nlohmann::json records = listing.Json();
  ASSERT_TRUE(records.is_array()) << listing.out;
  std::vector<std::string> commands;
  for (const auto& r : records) commands.push_back(r["command"]);
  // `audit` itself is not recorded.
  std::vector<std::string> want = {"init", "backup", "backup", "forget", "check", "restore"};
  ASSERT_EQ(commands, want) << records.dump(1);
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    EXPECT_EQ(r["seq"].get<uint64_t>(), i + 1);
    EXPECT_FALSE(r["host"].get<std::string>().empty());
    EXPECT_TRUE(r["start"].get<std::string>().ends_with("Z")) << "UTC";
    EXPECT_GE(r["duration_ns"].get<int64_t>(), 0);
    EXPECT_EQ(r["name"].get<std::string>().substr(0, 6), "audit/");
  }
  EXPECT_EQ(records[0]["result"], "ok");
  EXPECT_EQ(records[1]["snapshots_added"], nlohmann::json::array({first}));
  EXPECT_EQ(records[2]["snapshots_added"], nlohmann::json::array({second}));
  // The dump command's secret is redacted, the rest of the line kept.
  std::string args2 = records[2]["args"].dump();
  EXPECT_NE(args2.find("PGPASSWORD=*** echo dumped"), std::string::npos) << args2;
  EXPECT_EQ(records[3]["result"], "ok");
  EXPECT_EQ(records[3]["snapshots_removed"], nlohmann::json::array({first}));
  EXPECT_TRUE(records[3]["snapshots_added"].empty());
  EXPECT_EQ(records[4]["result"], "ok");
  EXPECT_EQ(records[5]["result"], "error");
  EXPECT_EQ(records[5]["error_code"], "not_found");
  EXPECT_EQ(records[5]["exit_code"].get<int>(), 1);
  EXPECT_FALSE(records[5]["error"].get<std::string>().empty());

  nlohmann::json last2 = AuditList(s, {"--last", "2"});
  ASSERT_EQ(last2.size(), 2u);
  EXPECT_EQ(last2[1]["command"], "restore");

  RunResult v = s.Bw({"--json", "audit", "verify"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  nlohmann::json vj = v.JsonLine("audit_verify");
  EXPECT_TRUE(vj["ok"].get<bool>()) << v.out;
  EXPECT_EQ(vj["records"].get<int>(), 6);
  EXPECT_EQ(vj["heads"], nlohmann::json::array({records[5]["name"]}));
}

TEST(AuditCli, VerifyNamesATamperedRecordFile) {
  Scratch s;
  s.Init();
  fs::create_directories(s.Path("src"));
  WriteFile(s.Path("src/a.txt"), "x");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(s.Bw({"backup", s.Path("src")}).exit_code, 0);
  std::vector<std::string> objects = Objects(s.repo() + "/audit");
  ASSERT_EQ(objects.size(), 4u);  // init + 3 backups
  ASSERT_EQ(s.Bw({"audit", "verify"}).exit_code, 0);

  // Flip a byte of record 2: authentication fails, verify names the file.
  std::string victim = objects[1];
  std::string name = "audit/" + fs::path(victim).filename().string();
  Corrupt(victim);
  RunResult v = s.Bw({"--json", "audit", "verify"});
  EXPECT_EQ(v.exit_code, 4) << v.out << v.err;
  EXPECT_NE(v.err.find(name), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("altered"), std::string::npos) << v.err;
  nlohmann::json j = v.JsonLine("audit_verify");
  ASSERT_FALSE(j.is_null()) << v.out;
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["problems"][0]["name"], name);
  EXPECT_EQ(j["problems"][0]["kind"], "altered");
  // The listing still shows the other records and says which one is damaged.
  RunResult l = s.Bw({"--json", "audit"});
  EXPECT_EQ(l.exit_code, 4);
  EXPECT_EQ(l.Json().size(), 3u);
  EXPECT_NE(l.err.find(name), std::string::npos) << l.err;

  // Removing it instead: named as missing by its successor.
  fs::remove(victim);
  RunResult r = s.Bw({"audit", "verify"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("sequence number 2"), std::string::npos) << r.err;
}

TEST(AuditCli, AFailedAppendWarnsAndKeepsTheExitCode) {
  Scratch s;
  s.Init();
  fs::create_directories(s.Path("src"));
  WriteFile(s.Path("src/a.txt"), "x");
  // No record can be written: audit/ is a file, not a directory (a write
  // refused even to root; read-only credentials are the unit tests').
  fs::remove_all(s.repo() + "/audit");
  WriteFile(s.repo() + "/audit", "in the way");
  RunResult b = s.Bw({"--json", "backup", s.Path("src")});
  EXPECT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(b.err.find("could not append this operation's record"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("the operation's result is unchanged"), std::string::npos) << b.err;
  nlohmann::json w = b.JsonLine("warning");
  ASSERT_FALSE(w.is_null()) << b.out;
  EXPECT_EQ(w["component"], "audit");
  EXPECT_FALSE(b.JsonLine("summary").is_null()) << b.out;
  // A failing command keeps its own exit code too.
  RunResult r = s.Bw({"restore", "0123456789abcdef", "--target", s.Path("out")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("could not append"), std::string::npos) << r.err;
  fs::remove(s.repo() + "/audit");
  ASSERT_EQ(s.Bw({"snapshots"}).exit_code, 0);
  EXPECT_EQ(Objects(s.repo() + "/audit").size(), 1u) << "appending works again";
}

}  // namespace
}  // namespace bulwark::testing
