#include "bulwark/config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "bulwark/base/error.h"

namespace bulwark::config {
namespace {

// Line numbers matter: error tests below point into this text.
const char kExample[] =
    R"(version: 1
default_repository: local
repositories:
  local:
    url: /var/backups/bulwark
    password_file: /etc/bulwark/pass
    compression: 3
  offsite:
    url: s3:bucket/prefix
sources:
  docs:
    kind: fs
    paths: [/usr/share/doc, /etc]
    exclude: ["*.tmp", "/etc/shadow"]
    exclude_file: /etc/bulwark/docs.exclude
    one_file_system: true
    tags: [daily]
    host: myhost
    repository: local
    chunker: {min: 512KiB, avg: 1MiB, max: 8MiB}
    schedule: "0 2 * * *"
    timezone: UTC
    retention: {keep_last: 3, keep_hourly: 0, keep_daily: 7, keep_weekly: 4, keep_monthly: 3, keep_yearly: 1, keep_within: 30d}
    copy_to: [offsite]
  etcd:
    kind: command
    command: ["etcdctl", "snapshot", "save", "-"]
    stdin_name: etcd.db
    timeout: 1h
)";

// `base` (kExample) with the first occurrence of `from` replaced by `to`.
std::string Edit(const std::string& from, const std::string& to, const std::string& base = kExample) {
  std::string s = base;
  size_t pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << "test bug: '" << from << "' not in example";
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

// Parses `yaml`, expecting kInvalidArgument; returns the message.
std::string ParseError(const std::string& yaml) {
  try {
    Parse(yaml, "t.yaml");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return "";
}

#define EXPECT_CONTAINS(haystack, needle)                                         \
  do {                                                                            \
    const std::string h_ = (haystack);                                            \
    EXPECT_NE(h_.find(needle), std::string::npos) << "'" << needle << "' not in: " << h_; \
  } while (0)

TEST(ConfigTest, ParsesExample) {
  const Config c = Parse(kExample, "bulwark.yaml");
  EXPECT_EQ(c.path, "bulwark.yaml");
  EXPECT_EQ(c.default_repository, "local");
  ASSERT_EQ(c.repositories.size(), 2u);

  const RepositoryConfig& local = c.repositories.at("local");
  EXPECT_EQ(local.name, "local");
  EXPECT_EQ(local.url, "/var/backups/bulwark");
  EXPECT_EQ(local.password_file, "/etc/bulwark/pass");
  EXPECT_EQ(local.compression_level, std::optional<int>(3));
  const RepositoryConfig& offsite = c.repositories.at("offsite");
  EXPECT_EQ(offsite.url, "s3:bucket/prefix");
  EXPECT_EQ(offsite.password_file, "");
  EXPECT_FALSE(offsite.compression_level.has_value());

  ASSERT_EQ(c.sources.size(), 2u);
  const SourceConfig& docs = c.Source("docs");
  EXPECT_EQ(docs.name, "docs");
  EXPECT_EQ(docs.kind, SourceKind::kFs);
  EXPECT_EQ(docs.paths, (std::vector<std::string>{"/usr/share/doc", "/etc"}));
  EXPECT_EQ(docs.exclude, (std::vector<std::string>{"*.tmp", "/etc/shadow"}));
  EXPECT_EQ(docs.exclude_file, "/etc/bulwark/docs.exclude");
  EXPECT_TRUE(docs.one_file_system);
  EXPECT_EQ(docs.tags, std::vector<std::string>{"daily"});
  EXPECT_EQ(docs.host, "myhost");
  EXPECT_EQ(docs.repository, "local");
  ASSERT_TRUE(docs.chunker.has_value());
  EXPECT_EQ(docs.chunker->min_size, 512u * 1024);
  EXPECT_EQ(docs.chunker->avg_size, 1024u * 1024);
  EXPECT_EQ(docs.chunker->max_size, 8u * 1024 * 1024);
  EXPECT_EQ(docs.schedule, "0 2 * * *");
  EXPECT_EQ(docs.timezone, "UTC");
  EXPECT_EQ(docs.retention.keep_last, 3);
  EXPECT_EQ(docs.retention.keep_hourly, 0);
  EXPECT_EQ(docs.retention.keep_daily, 7);
  EXPECT_EQ(docs.retention.keep_weekly, 4);
  EXPECT_EQ(docs.retention.keep_monthly, 3);
  EXPECT_EQ(docs.retention.keep_yearly, 1);
  EXPECT_EQ(docs.retention.keep_within, CalendarDuration::Parse("30d"));
  EXPECT_FALSE(docs.retention.group_by.has_value());
  EXPECT_FALSE(docs.ttl.has_value());
  EXPECT_FALSE(docs.retention.empty());
  EXPECT_EQ(docs.copy_to, std::vector<std::string>{"offsite"});
  EXPECT_TRUE(docs.command.empty());

  const SourceConfig& etcd = c.Source("etcd");
  EXPECT_EQ(etcd.kind, SourceKind::kCommand);
  EXPECT_EQ(etcd.command, (std::vector<std::string>{"etcdctl", "snapshot", "save", "-"}));
  EXPECT_EQ(etcd.stdin_name, "etcd.db");
  EXPECT_EQ(etcd.timeout_seconds, 3600);
  EXPECT_EQ(etcd.repository, "local");  // from default_repository
  EXPECT_TRUE(etcd.paths.empty());
  EXPECT_FALSE(etcd.chunker.has_value());
  EXPECT_TRUE(etcd.retention.empty());

  EXPECT_EQ(c.Repository("offsite"), &c.repositories.at("offsite"));
  EXPECT_EQ(c.Repository("nope"), nullptr);
  EXPECT_EQ(SourceKindName(SourceKind::kFs), "fs");
  EXPECT_EQ(SourceKindName(SourceKind::kCommand), "command");
}

TEST(ConfigTest, DefaultsAndSingleRepository) {
  const Config c = Parse(R"(version: 1
repositories:
  only: {url: /srv/repo, compression: off}
sources:
  db:
    kind: command
    command: [pg_dump, ""]
  home:
    kind: fs
    paths: [/home]
    one_file_system: no
    chunker: {avg: 2MiB}
)",
                         "x.yaml");
  EXPECT_EQ(c.default_repository, "");
  EXPECT_EQ(c.repositories.at("only").compression_level, std::optional<int>(0));
  const SourceConfig& db = c.Source("db");
  EXPECT_EQ(db.repository, "only");
  EXPECT_EQ(db.stdin_name, "db.stream");
  EXPECT_EQ(db.timeout_seconds, 0);
  EXPECT_EQ(db.command, (std::vector<std::string>{"pg_dump", ""}));
  const SourceConfig& home = c.Source("home");
  EXPECT_FALSE(home.one_file_system);
  EXPECT_EQ(home.repository, "only");
  ASSERT_TRUE(home.chunker.has_value());
  EXPECT_EQ(*home.chunker, (ChunkerSizes{512 * 1024, 2 * 1024 * 1024, 8 * 1024 * 1024}));
  EXPECT_TRUE(home.schedule.empty());
  EXPECT_TRUE(home.tags.empty());
}

TEST(ConfigTest, RepositoryS3Settings) {
  const Config c = Parse(R"(version: 1
repositories:
  minio:
    url: s3://minio.internal:9000/backups/bulwark
    s3:
      endpoint: http://127.0.0.1:9000
      region: eu-central-1
      profile: backup
      path_style: false
      tls_verify: no
      max_attempts: 3
  plain: {url: /srv/repo}
)",
                         "x.yaml");
  const auto& s3 = c.repositories.at("minio").s3;
  EXPECT_EQ(s3.endpoint, std::optional<std::string>("http://127.0.0.1:9000"));
  EXPECT_EQ(s3.region, std::optional<std::string>("eu-central-1"));
  EXPECT_EQ(s3.profile, std::optional<std::string>("backup"));
  EXPECT_EQ(s3.path_style, std::optional<bool>(false));
  EXPECT_EQ(s3.tls_verify, std::optional<bool>(false));
  EXPECT_EQ(s3.max_attempts, std::optional<int>(3));
  EXPECT_EQ(c.repositories.at("plain").s3, storage::s3::S3Settings{});

  const std::string base = "version: 1\nrepositories:\n  r:\n    url: s3:b/p\n    s3:\n";
  EXPECT_CONTAINS(ParseError(base + "      endpoint: minio:9000\n"), "t.yaml:6:17: ");
  EXPECT_CONTAINS(ParseError(base + "      endpoint: minio:9000\n"), "http:// or https://");
  EXPECT_CONTAINS(ParseError(base + "      max_attempts: 0\n"), "between 1 and 100");
  EXPECT_CONTAINS(ParseError(base + "      tls_verify: maybe\n"), "true or false");
  EXPECT_CONTAINS(ParseError(base + "      secret_key: x\n"), "secret_key");
}

TEST(ConfigTest, CrLfAndByteOrderMark) {
  std::string text = "\xEF\xBB\xBF";
  for (char ch : std::string(kExample)) {
    if (ch == '\n') text += '\r';
    text += ch;
  }
  const Config c = Parse(text, "crlf.yaml");
  EXPECT_EQ(c.Source("docs").paths, (std::vector<std::string>{"/usr/share/doc", "/etc"}));
  EXPECT_EQ(c.Source("etcd").timeout_seconds, 3600);
  EXPECT_EQ(c.repositories.at("offsite").url, "s3:bucket/prefix");
  // Positions still count lines.
  EXPECT_EQ(ParseError(text.replace(text.find("exclude:"), 8, "exlude:")).substr(0, 13), "t.yaml:14:5: ");
}

TEST(ConfigTest, EmptySectionsAreAllowed) {
  const Config c = Parse("version: 1\nrepositories:\nsources:\n", "x.yaml");
  EXPECT_TRUE(c.repositories.empty());
  EXPECT_TRUE(c.sources.empty());
}

TEST(ConfigTest, UnknownKeysNameKeyAndSuggest) {
  EXPECT_EQ(ParseError(Edit("    exclude: [", "    exlude: [")),
            "t.yaml:14:5: unknown key 'exlude' in source 'docs' (did you mean 'exclude'?)");
  EXPECT_EQ(ParseError(Edit("repositories:", "repositores:")),
            "t.yaml:3:1: unknown key 'repositores' at top level (did you mean 'repositories'?)");
  EXPECT_EQ(ParseError(Edit("    compression: 3", "    compresion: 3")),
            "t.yaml:7:5: unknown key 'compresion' in repository 'local' (did you mean 'compression'?)");
  EXPECT_EQ(ParseError(Edit("keep_daily: 7", "keep_dialy: 7")),
            "t.yaml:23:47: unknown key 'keep_dialy' in retention of source 'docs' (did you mean "
            "'keep_daily'?)");
  EXPECT_EQ(ParseError(Edit("{min: 512KiB", "{mn: 512KiB")),
            "t.yaml:20:15: unknown key 'mn' in chunker of source 'docs' (did you mean 'min'?)");
  // Nothing close: no suggestion.
  EXPECT_EQ(ParseError(Edit("    host: myhost", "    colour: blue")),
            "t.yaml:18:5: unknown key 'colour' in source 'docs'");
  // Transposition and case count as close.
  EXPECT_CONTAINS(ParseError(Edit("    paths: [", "    pahts: [")), "(did you mean 'paths'?)");
  EXPECT_CONTAINS(ParseError(Edit("    tags: [", "    Tags: [")), "(did you mean 'tags'?)");
}

TEST(ConfigTest, KeyOfAnotherKind) {
  EXPECT_EQ(ParseError(Edit("    timezone: UTC", "    stdin_name: x")),
            "t.yaml:22:5: key 'stdin_name' in source 'docs' is not valid for kind 'fs' (it belongs "
            "to kind 'command')");
  EXPECT_EQ(ParseError(Edit("    timeout: 1h", "    paths: [/x]")),
            "t.yaml:29:5: key 'paths' in source 'etcd' is not valid for kind 'command' (it belongs "
            "to kind 'fs')");
}

TEST(ConfigTest, UnknownKindListsAllowedKinds) {
  EXPECT_EQ(ParseError(Edit("kind: command", "kind: mysql")),
            "t.yaml:26:11: unknown source kind 'mysql' in source 'etcd' (allowed kinds: clickhouse, command, fs, "
            "postgres)");
  EXPECT_EQ(ParseError(Edit("kind: fs", "kind: fss")),
            "t.yaml:12:11: unknown source kind 'fss' in source 'docs' (did you mean 'fs'?) (allowed "
            "kinds: clickhouse, command, fs, postgres)");
}

const char kPostgres[] = R"(version: 1
repositories:
  local: {url: /var/backups/bulwark}
sources:
  app:
    kind: postgres
    conninfo: "host=127.0.0.1 port=5432 user=backup dbname=app"
)";

TEST(ConfigTest, PostgresSource) {
  Config c = Parse(kPostgres, "t.yaml");
  const SourceConfig& app = c.Source("app");
  EXPECT_EQ(app.kind, SourceKind::kPostgres);
  EXPECT_EQ(SourceKindName(app.kind), "postgres");
  EXPECT_EQ(app.conninfo, "host=127.0.0.1 port=5432 user=backup dbname=app");
  EXPECT_EQ(app.pg_mode, PgMode::kLogical);  // the default
  EXPECT_TRUE(app.pg_globals);
  EXPECT_EQ(app.pg_bin_dir, "");

  Config full = Parse(std::string(kPostgres) +
                          "    mode: physical\n    pg_bin_dir: /usr/lib/postgresql/15/bin\n    globals: false\n"
                          "    schema_version_query: SELECT 42\n",
                      "t.yaml");
  const SourceConfig& f = full.Source("app");
  EXPECT_EQ(f.pg_mode, PgMode::kPhysical);
  EXPECT_EQ(f.pg_bin_dir, "/usr/lib/postgresql/15/bin");
  EXPECT_FALSE(f.pg_globals);
  EXPECT_EQ(f.schema_version_query, "SELECT 42");
  // URIs are accepted too.
  EXPECT_EQ(Parse(Edit("\"host=127.0.0.1 port=5432 user=backup dbname=app\"", "postgresql://backup@db:5432/app",
                       kPostgres),
                  "t.yaml")
                .Source("app")
                .conninfo,
            "postgresql://backup@db:5432/app");
}

TEST(ConfigTest, PostgresSourceErrors) {
  // A password in the connection string (either form) is refused: it would
  // reach pg_dump's argv and the logs.
  EXPECT_CONTAINS(ParseError(Edit("dbname=app", "dbname=app password=secret", kPostgres)),
                  "t.yaml:7:15: 'conninfo' in source 'app' contains a password; put it in a password file (PGPASSFILE");
  EXPECT_CONTAINS(ParseError(Edit("\"host=127.0.0.1 port=5432 user=backup dbname=app\"",
                                  "postgresql://backup:secret@db/app", kPostgres)),
                  "contains a password");
  EXPECT_CONTAINS(ParseError(Edit("dbname=app", "dbname=app nosuchkey=1", kPostgres)),
                  "t.yaml:7:15: 'conninfo' in source 'app' is not a valid connection string: invalid connection option "
                  "\"nosuchkey\"");
  EXPECT_EQ(ParseError(std::string(kPostgres) + "    mode: streaming\n"),
            "t.yaml:8:11: 'mode' in source 'app' must be 'logical' or 'physical', got 'streaming'");
  EXPECT_EQ(ParseError(Edit("    conninfo: \"host=127.0.0.1 port=5432 user=backup dbname=app\"\n", "", kPostgres)),
            "t.yaml:5:3: missing required key 'conninfo' in source 'app'");
  EXPECT_EQ(ParseError(std::string(kPostgres) + "    paths: [/x]\n"),
            "t.yaml:8:5: key 'paths' in source 'app' is not valid for kind 'postgres' (it belongs to kind 'fs')");
}

const char kClickHouse[] = R"(version: 1
repositories:
  local: {url: /var/backups/bulwark}
sources:
  ch:
    kind: clickhouse
    url: http://db:8123
)";

TEST(ConfigTest, ClickHouseSource) {
  Config c = Parse(kClickHouse, "t.yaml");
  const SourceConfig& ch = c.Source("ch");
  EXPECT_EQ(ch.kind, SourceKind::kClickHouse);
  EXPECT_EQ(SourceKindName(ch.kind), "clickhouse");
  EXPECT_EQ(ch.ch_url, "http://db:8123");
  EXPECT_EQ(ch.ch_mode, ChMode::kNative);  // the default
  EXPECT_TRUE(ch.ch_user.empty());
  EXPECT_TRUE(ch.ch_password_file.empty());
  EXPECT_TRUE(ch.ch_databases.empty());
  EXPECT_TRUE(ch.ch_tls_verify);

  Config full = Parse(Edit("url: http://db:8123", "url: https://db/", kClickHouse) +
                          "    user: backup\n    password_file: /etc/bulwark/ch\n    mode: parts\n"
                          "    databases: [app, \"logs_*\"]\n    tables: [\"app.*\"]\n    exclude_tables: [\"*.tmp\"]\n"
                          "    data_path: /var/lib/clickhouse\n    tls_verify: false\n",
                      "t.yaml");
  const SourceConfig& f = full.Source("ch");
  EXPECT_EQ(f.ch_url, "https://db");
  EXPECT_EQ(f.ch_user, "backup");
  EXPECT_EQ(f.ch_password_file, "/etc/bulwark/ch");
  EXPECT_EQ(f.ch_mode, ChMode::kParts);
  EXPECT_EQ(f.ch_databases, (std::vector<std::string>{"app", "logs_*"}));
  EXPECT_EQ(f.ch_tables, (std::vector<std::string>{"app.*"}));
  EXPECT_EQ(f.ch_exclude_tables, (std::vector<std::string>{"*.tmp"}));
  EXPECT_EQ(f.ch_data_path, "/var/lib/clickhouse");
  EXPECT_FALSE(f.ch_tls_verify);
}

TEST(ConfigTest, ClickHouseSourceErrors) {
  EXPECT_CONTAINS(ParseError(Edit("url: http://db:8123", "url: http://backup:secret@db:8123", kClickHouse)),
                  "t.yaml:7:10: 'url' in source 'ch': ClickHouse URL 'http://backup:secret@db:8123': no user or "
                  "password in the URL");
  EXPECT_CONTAINS(ParseError(Edit("url: http://db:8123", "url: ftp://db", kClickHouse)), "the scheme must be http");
  EXPECT_EQ(ParseError(std::string(kClickHouse) + "    mode: physical\n"),
            "t.yaml:8:11: 'mode' in source 'ch' must be 'native' or 'parts', got 'physical'");
  EXPECT_EQ(ParseError(std::string(kClickHouse) + "    tables: [events]\n"),
            "t.yaml:8:14: pattern 'events' in source 'ch' must be DATABASE.TABLE (globs allowed, e.g. \"app.*\")");
  EXPECT_EQ(ParseError(std::string(kClickHouse) + "    databases: []\n"),
            "t.yaml:8:16: 'databases' in source 'ch' must not be empty (leave it out for all)");
  EXPECT_EQ(ParseError(std::string(kClickHouse) + "    password_file: relative\n"),
            "t.yaml:8:20: 'password_file' in source 'ch' must be an absolute path, got 'relative'");
  EXPECT_EQ(ParseError(Edit("    url: http://db:8123\n", "", kClickHouse)),
            "t.yaml:5:3: missing required key 'url' in source 'ch'");
  EXPECT_EQ(ParseError(std::string(kClickHouse) + "    conninfo: x\n"),
            "t.yaml:8:5: key 'conninfo' in source 'ch' is not valid for kind 'clickhouse' (it belongs to kind "
            "'postgres')");
  EXPECT_CONTAINS(ParseError(std::string(kClickHouse) + "    drill: {rto: 5m}\n"),
                  "restore drills are not available for clickhouse sources yet");
}

TEST(ConfigTest, MissingRequiredKeys) {
  EXPECT_EQ(ParseError(Edit("    kind: fs\n", "")), "t.yaml:11:3: missing required key 'kind' in source 'docs'");
  // A misspelt 'kind' is reported as unknown rather than missing.
  EXPECT_EQ(ParseError(Edit("    kind: fs\n", "    knd: fs\n")),
            "t.yaml:12:5: unknown key 'knd' in source 'docs' (did you mean 'kind'?)");
  EXPECT_EQ(ParseError(Edit("    paths: [/usr/share/doc, /etc]\n", "")),
            "t.yaml:11:3: missing required key 'paths' in source 'docs'");
  EXPECT_EQ(ParseError(Edit("    command: [\"etcdctl\", \"snapshot\", \"save\", \"-\"]\n", "")),
            "t.yaml:25:3: missing required key 'command' in source 'etcd'");
  EXPECT_EQ(ParseError(Edit("    url: s3:bucket/prefix\n", "    password_file: /p\n")),
            "t.yaml:8:3: missing required key 'url' in repository 'offsite'");
  EXPECT_EQ(ParseError(Edit("version: 1\n", "")), "t.yaml:1:1: missing required key 'version' at top level");
}

TEST(ConfigTest, Version) {
  EXPECT_EQ(ParseError(Edit("version: 1", "version: 2")),
            "t.yaml:1:10: unsupported config version 2 (this bulwark understands version 1)");
  EXPECT_EQ(ParseError(Edit("version: 1", "version: one")), "t.yaml:1:10: 'version' at top level must be an integer, got 'one'");
}

TEST(ConfigTest, YamlSyntaxErrorsHavePositions) {
  // An unclosed flow sequence is detected on the next line.
  EXPECT_EQ(ParseError(Edit("paths: [/usr/share/doc, /etc]", "paths: [/usr/share/doc, /etc")),
            "t.yaml:14:12: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(ParseError("version: 1\n\trepositories: {}\n"),
            "t.yaml:2:1: YAML syntax error: illegal tab when looking for indentation");
  EXPECT_EQ(ParseError("version: 1\nsources: *nope\n"),
            "t.yaml:2:10: YAML syntax error: the referenced anchor is not defined");
}

TEST(ConfigTest, DocumentShape) {
  EXPECT_EQ(ParseError(""), "t.yaml:1:1: the configuration is empty (expected at least 'version: 1')");
  EXPECT_EQ(ParseError("# only a comment\n"),
            "t.yaml:1:1: the configuration is empty (expected at least 'version: 1')");
  EXPECT_EQ(ParseError("version: 1\n---\nversion: 1\n"),
            "t.yaml:3:1: unexpected content after the first YAML document (only one document is allowed)");
  // yaml-cpp 0.7's LoadAll would loop forever on these.
  EXPECT_EQ(ParseError(","), "t.yaml:1:1: unexpected content after the first YAML document (only one document is allowed)");
  EXPECT_EQ(ParseError("version: 1\n,\n"), "t.yaml:2:1: YAML syntax error: end of map not found");
  EXPECT_EQ(ParseError("- a\n- b\n"),
            "t.yaml:1:1: the top level must be a mapping with keys version, repositories, sources");
  EXPECT_EQ(ParseError("version: 1\nsources: [a]\n"), "t.yaml:2:10: 'sources' at top level must be a mapping (key: value)");
  EXPECT_EQ(ParseError("version: 1\nrepositories:\n  r: /x\n"),
            "t.yaml:3:6: 'r' in repositories must be a mapping (key: value)");
  EXPECT_EQ(ParseError("version: 1\n[a]: 1\n"), "t.yaml:2:1: keys must be strings at top level");
}

TEST(ConfigTest, DuplicateKeys) {
  EXPECT_EQ(ParseError(Edit("    host: myhost\n", "    host: myhost\n    host: other\n")),
            "t.yaml:19:5: duplicate key 'host' in source 'docs'");
  EXPECT_EQ(ParseError(Edit("  offsite:\n", "  local:\n")), "t.yaml:8:3: duplicate key 'local' in repositories");
}

TEST(ConfigTest, NullValues) {
  EXPECT_EQ(ParseError(Edit("    url: s3:bucket/prefix", "    url:")),
            "t.yaml:9:5: 'url' in repository 'offsite' has no value");
  EXPECT_EQ(ParseError(Edit("    tags: [daily]", "    tags:")), "t.yaml:17:5: 'tags' in source 'docs' has no value");
  EXPECT_EQ(ParseError(Edit("    url: s3:bucket/prefix", "    url: ~")),
            "t.yaml:9:5: 'url' in repository 'offsite' has no value");
  EXPECT_EQ(ParseError(Edit("    url: s3:bucket/prefix", "    url: \"\"")),
            "t.yaml:9:10: 'url' in repository 'offsite' must not be empty");
}

TEST(ConfigTest, WrongTypes) {
  EXPECT_EQ(ParseError(Edit("    url: s3:bucket/prefix", "    url: [a]")),
            "t.yaml:9:10: 'url' in repository 'offsite' must be a string");
  EXPECT_EQ(ParseError(Edit("    tags: [daily]", "    tags: daily")),
            "t.yaml:17:11: 'tags' in source 'docs' must be a list of strings, e.g. [\"a\", \"b\"]");
  EXPECT_EQ(ParseError(Edit("    tags: [daily]", "    tags: [daily, [x]]")),
            "t.yaml:17:19: 'tags' in source 'docs': every element must be a string");
  EXPECT_EQ(ParseError(Edit("one_file_system: true", "one_file_system: maybe")),
            "t.yaml:16:22: 'one_file_system' in source 'docs' must be true or false, got 'maybe'");
  EXPECT_EQ(ParseError(Edit("    host: myhost", "    host: \"a\\0b\"")),
            "t.yaml:18:11: 'host' in source 'docs' must not contain a NUL byte");
}

TEST(ConfigTest, Paths) {
  EXPECT_EQ(ParseError(Edit("[/usr/share/doc, /etc]", "[/usr/share/doc, etc]")),
            "t.yaml:13:29: path 'etc' in source 'docs' must be absolute");
  EXPECT_EQ(ParseError(Edit("[/usr/share/doc, /etc]", "[]")), "t.yaml:13:12: 'paths' in source 'docs' must not be empty");
  EXPECT_EQ(ParseError(Edit("[/usr/share/doc, /etc]", "[/etc, /etc]")),
            "t.yaml:13:19: duplicate path '/etc' in source 'docs'");
  EXPECT_EQ(ParseError(Edit("exclude_file: /etc/bulwark/docs.exclude", "exclude_file: docs.exclude")),
            "t.yaml:15:19: 'exclude_file' in source 'docs' must be an absolute path, got 'docs.exclude'");
  EXPECT_EQ(ParseError(Edit("password_file: /etc/bulwark/pass", "password_file: pass")),
            "t.yaml:6:20: 'password_file' in repository 'local' must be an absolute path, got 'pass'");
  EXPECT_EQ(ParseError(Edit("exclude: [\"*.tmp\"", "exclude: [\"\"")),
            "t.yaml:14:15: 'exclude' in source 'docs': elements must not be empty");
}

TEST(ConfigTest, CommandSource) {
  EXPECT_EQ(ParseError(Edit("command: [\"etcdctl\", \"snapshot\", \"save\", \"-\"]", "command: []")),
            "t.yaml:27:14: 'command' in source 'etcd' must not be empty");
  EXPECT_EQ(ParseError(Edit("command: [\"etcdctl\", \"snapshot\", \"save\", \"-\"]", "command: etcdctl snapshot")),
            "t.yaml:27:14: 'command' in source 'etcd' must be a list of strings, e.g. [\"a\", \"b\"]");
  EXPECT_EQ(ParseError(Edit("stdin_name: etcd.db", "stdin_name: a/b")),
            "t.yaml:28:17: 'stdin_name' in source 'etcd' must be a plain file name without '/', got 'a/b'");
  EXPECT_EQ(ParseError(Edit("timeout: 1h", "timeout: 1 hour")),
            "t.yaml:29:14: 'timeout' in source 'etcd': invalid duration '1 hour': unknown unit (use s, m, h, d, "
            "w) (expected e.g. 30s, 15m, 6h, 30d, 1w, 1h30m)");
}

TEST(ConfigTest, RepositoryReferences) {
  EXPECT_EQ(ParseError(Edit("    repository: local", "    repository: locl")),
            "t.yaml:19:17: 'repository' in source 'docs' 'locl' is not a defined repository (did you mean "
            "'local'?) (defined: local, offsite)");
  EXPECT_EQ(ParseError(Edit("copy_to: [offsite]", "copy_to: [elsewhere]")),
            "t.yaml:24:15: 'copy_to' in source 'docs': repository 'elsewhere' is not a defined repository "
            "(defined: local, offsite)");
  EXPECT_EQ(ParseError(Edit("copy_to: [offsite]", "copy_to: [offsite, local]")),
            "t.yaml:24:24: 'copy_to' in source 'docs' names the source's own repository 'local'");
  EXPECT_EQ(ParseError(Edit("copy_to: [offsite]", "copy_to: [offsite, offsite]")),
            "t.yaml:24:24: 'copy_to' in source 'docs' names repository 'offsite' twice");
  EXPECT_EQ(ParseError(Edit("default_repository: local", "default_repository: offsit")),
            "t.yaml:2:21: default_repository 'offsit' is not a defined repository (did you mean 'offsite'?) "
            "(defined: local, offsite)");
  // Two repositories, no default, and a source without 'repository'.
  EXPECT_EQ(ParseError(Edit("default_repository: local\n", "")),
            "t.yaml:24:3: source 'etcd' does not say which repository to use: set 'repository' in it or a "
            "top-level 'default_repository'");
  EXPECT_EQ(ParseError("version: 1\nsources:\n  s: {kind: fs, paths: [/]}\n"),
            "t.yaml:3:3: source 's' needs a repository, but no repositories are defined");
}

TEST(ConfigTest, Names) {
  EXPECT_EQ(ParseError(Edit("  etcd:", "  \"et cd\":")),
            "t.yaml:25:3: invalid source name 'et cd': use 1-64 characters of A-Z a-z 0-9 . _ - starting "
            "with a letter or digit");
  EXPECT_CONTAINS(ParseError(Edit("  offsite:", "  -offsite:")), "t.yaml:8:3: invalid repository name '-offsite'");
}

TEST(ConfigTest, Compression) {
  EXPECT_EQ(ParseError(Edit("compression: 3", "compression: 20")),
            "t.yaml:7:18: 'compression' in repository 'local' must be a zstd level 1..19 or off, got '20'");
  EXPECT_EQ(ParseError(Edit("compression: 3", "compression: 0")),
            "t.yaml:7:18: 'compression' in repository 'local' must be a zstd level 1..19 or off, got '0'");
  EXPECT_EQ(ParseError(Edit("compression: 3", "compression: fast")),
            "t.yaml:7:18: 'compression' in repository 'local' must be a zstd level 1..19 or off, got 'fast'");
  EXPECT_EQ(Parse(Edit("compression: 3", "compression: 19"), "t").repositories.at("local").compression_level, 19);
  EXPECT_EQ(Parse(Edit("compression: 3", "compression: \"off\""), "t").repositories.at("local").compression_level,
            0);
}

TEST(ConfigTest, Chunker) {
  const std::string line = "{min: 512KiB, avg: 1MiB, max: 8MiB}";
  auto with = [&](const std::string& c) { return Edit(line, c); };
  EXPECT_EQ(*Parse(with("{min: 64, avg: 128, max: 64MiB}"), "t").Source("docs").chunker,
            (ChunkerSizes{64, 128, 64u << 20}));
  EXPECT_EQ(ParseError(with("{min: 512KiB, avg: 1000KiB, max: 8MiB}")),
            "t.yaml:20:33: chunker of source 'docs': avg must be a power of two, got 1000KiB");
  EXPECT_EQ(ParseError(with("{min: 1MiB, avg: 1MiB, max: 8MiB}")),
            "t.yaml:20:20: chunker of source 'docs': min 1MiB must be smaller than avg 1MiB");
  EXPECT_EQ(ParseError(with("{min: 512KiB, avg: 8MiB, max: 8MiB}")),
            "t.yaml:20:33: chunker of source 'docs': avg 8MiB must be smaller than max 8MiB");
  EXPECT_EQ(ParseError(with("{min: 32, avg: 1MiB, max: 8MiB}")),
            "t.yaml:20:20: chunker of source 'docs': min must be at least 64 bytes, got 32");
  EXPECT_EQ(ParseError(with("{min: 512KiB, avg: 1MiB, max: 128MiB}")),
            "t.yaml:20:44: 'max' in chunker of source 'docs' must be at most 64MiB, got '128MiB'");
  EXPECT_EQ(ParseError(with("{min: 512KiB, avg: 1MiB, max: 8 parsecs}")),
            "t.yaml:20:44: 'max' in chunker of source 'docs': unknown size unit in '8 parsecs'");
  EXPECT_EQ(ParseError(with("{min: 512KiB, avg: 1MiB, max: 99999999999999999999999}")),
            "t.yaml:20:44: 'max' in chunker of source 'docs': size too large: 99999999999999999999999");
  // A default that conflicts with a given value is reported at the given one.
  EXPECT_EQ(ParseError(with("{avg: 16MiB}")),
            "t.yaml:20:20: chunker of source 'docs': avg 16MiB must be smaller than max 8MiB (default)");
}

TEST(ConfigTest, Schedule) {
  EXPECT_EQ(ParseError(Edit("schedule: \"0 2 * * *\"", "schedule: \"0 25 * * *\"")),
            "t.yaml:21:15: invalid schedule in source 'docs': invalid cron expression '0 25 * * *': hour: value 25 "
            "out of range 0-23");
  EXPECT_EQ(Parse(Edit("schedule: \"0 2 * * *\"", "schedule: \"@every 6h\""), "t").Source("docs").schedule,
            "@every 6h");
}

TEST(ConfigTest, TimezoneAppliesToTheSchedule) {
  const Config c = Parse(Edit("timezone: UTC", "timezone: Europe/Berlin"), "t");
  const SourceConfig& docs = c.Source("docs");
  EXPECT_EQ(docs.timezone, "Europe/Berlin");
  const std::optional<CronSchedule> s = docs.ParsedSchedule();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->zone().name(), "Europe/Berlin");
  // 02:00 in Berlin on 2024-01-15 (CET, +01:00) is 01:00 UTC.
  EXPECT_EQ(s->Next(1705276800 /* 2024-01-15T00:00:00Z */), 1705280400 /* 01:00:00Z */);
  // Without a timezone the schedule is in UTC.
  const Config utc = Parse(Edit("    timezone: UTC\n", ""), "t");
  EXPECT_TRUE(utc.Source("docs").Zone().is_utc());
  EXPECT_EQ(utc.Source("docs").ParsedSchedule()->Next(1705276800), 1705284000 /* 02:00:00Z */);
  EXPECT_FALSE(utc.Source("etcd").ParsedSchedule().has_value());
}

TEST(ConfigTest, UnknownTimezoneIsAnErrorAtTheValue) {
  const std::string msg = ParseError(Edit("timezone: UTC", "timezone: Europe/Berlln"));
  EXPECT_CONTAINS(msg, "t.yaml:22:15: 'timezone' in source 'docs': unknown time zone 'Europe/Berlln'");
  EXPECT_CONTAINS(ParseError(Edit("timezone: UTC", "timezone: ../../etc/passwd")), "t.yaml:22:15:");
  EXPECT_CONTAINS(ParseError(Edit("timezone: UTC", "timezone: \"\"")),
                  "t.yaml:22:15: 'timezone' in source 'docs' must not be empty");
}

TEST(ConfigTest, SuspendAndHooks) {
  const std::string yaml = Edit("    copy_to: [offsite]\n",
                                "    copy_to: [offsite]\n"
                                "    suspend: true\n"
                                "    hooks:\n"
                                "      pre:\n"
                                "        - command: [fsfreeze, -f, /data]\n"
                                "          timeout: 30s\n"
                                "          on_error: fail\n"
                                "        - {command: [sync]}\n"
                                "      post:\n"
                                "        - command: [fsfreeze, -u, /data]\n"
                                "          on_error: continue\n"
                                "          timeout: 0\n");
  const Config c = Parse(yaml, "t");
  const SourceConfig& docs = c.Source("docs");
  EXPECT_TRUE(docs.suspend);
  ASSERT_EQ(docs.hooks.pre.size(), 2u);
  EXPECT_EQ(docs.hooks.pre[0].command, (std::vector<std::string>{"fsfreeze", "-f", "/data"}));
  EXPECT_EQ(docs.hooks.pre[0].timeout_seconds, 30);
  EXPECT_EQ(docs.hooks.pre[0].on_error, Hook::OnError::kFail);
  EXPECT_EQ(docs.hooks.pre[1].command, (std::vector<std::string>{"sync"}));
  EXPECT_EQ(docs.hooks.pre[1].timeout_seconds, Hook::kDefaultTimeoutSeconds);
  EXPECT_EQ(docs.hooks.pre[1].on_error, Hook::OnError::kFail);
  ASSERT_EQ(docs.hooks.post.size(), 1u);
  EXPECT_EQ(docs.hooks.post[0].on_error, Hook::OnError::kContinue);
  EXPECT_EQ(docs.hooks.post[0].timeout_seconds, 0);
  // Defaults: not suspended, no hooks.
  EXPECT_FALSE(c.Source("etcd").suspend);
  EXPECT_TRUE(c.Source("etcd").hooks.empty());
  EXPECT_FALSE(
      Parse(Edit("    copy_to: [offsite]\n", "    copy_to: [offsite]\n    suspend: no\n"), "t").Source("docs").suspend);
}

TEST(ConfigTest, HookErrorsPointAtTheProblem) {
  const auto with = [](const std::string& hooks) {
    return ParseError(Edit("    copy_to: [offsite]\n", "    copy_to: [offsite]\n" + hooks));
  };
  // Line 25 is the first line after copy_to.
  EXPECT_EQ(with("    suspend: maybe\n"),
            "t.yaml:25:14: 'suspend' in source 'docs' must be true or false, got 'maybe'");
  EXPECT_EQ(with("    hooks:\n      pre:\n        - command: [sync]\n          on_eror: fail\n"),
            "t.yaml:28:11: unknown key 'on_eror' in pre hook 1 of source 'docs' (did you mean 'on_error'?)");
  EXPECT_EQ(with("    hooks:\n      pre:\n        - command: [sync]\n          on_error: ignore\n"),
            "t.yaml:28:21: 'on_error' in pre hook 1 of source 'docs' must be 'fail' or 'continue', got 'ignore'");
  EXPECT_EQ(with("    hooks:\n      post:\n        - {command: [a]}\n        - {command: [b], timeout: 5x}\n"),
            "t.yaml:28:35: 'timeout' in post hook 2 of source 'docs': invalid duration '5x': unknown unit (use s, m, "
            "h, d, w) (expected e.g. 30s, 15m, 6h, 30d, 1w, 1h30m)");
  EXPECT_EQ(with("    hooks:\n      pre:\n        - timeout: 5s\n"),
            "t.yaml:27:11: missing required key 'command' in pre hook 1 of source 'docs'");
  EXPECT_EQ(with("    hooks:\n      pre:\n        - command: []\n"),
            "t.yaml:27:20: 'command' in pre hook 1 of source 'docs' must not be empty");
  EXPECT_EQ(with("    hooks:\n      pre:\n        - [sync]\n"),
            "t.yaml:27:11: expected a mapping (command, timeout, on_error) in pre hook 1 of source 'docs'");
  EXPECT_EQ(with("    hooks:\n      pre: {command: [sync]}\n"),
            "t.yaml:26:12: 'pre' in hooks of source 'docs' must be a list of hooks, e.g. [{command: [sync]}]");
  EXPECT_EQ(with("    hooks:\n      during: []\n"), "t.yaml:26:7: unknown key 'during' in hooks of source 'docs'");
  EXPECT_EQ(with("    hooks: [sync]\n"), "t.yaml:25:12: 'hooks' in source 'docs' must be a mapping (key: value)");
}

TEST(ConfigTest, Retention) {
  EXPECT_EQ(ParseError(Edit("keep_last: 3", "keep_last: -2")),
            "t.yaml:23:28: 'keep_last' in retention of source 'docs': invalid count '-2': want 0..1000000, or -1 / "
            "unlimited to keep all");
  EXPECT_EQ(ParseError(Edit("keep_last: 3", "keep_last: 2.5")),
            "t.yaml:23:28: 'keep_last' in retention of source 'docs': invalid count '2.5': want 0..1000000, or -1 / "
            "unlimited to keep all");
  EXPECT_EQ(ParseError(Edit("keep_within: 30d", "keep_within: 30")),
            "t.yaml:23:124: 'keep_within' in retention of source 'docs': invalid duration '30': missing unit after 30 "
            "(y, m, w, d or h) (want e.g. 36h, 7d, 4w, 3m, 1y or 1y5m7d2h; m = months)");
  EXPECT_EQ(ParseError(Edit("keep_within: 30d", "keep_within: 3x")),
            "t.yaml:23:124: 'keep_within' in retention of source 'docs': invalid duration '3x': unknown unit 'x' "
            "(use y, m, w, d or h) (want e.g. 36h, 7d, 4w, 3m, 1y or 1y5m7d2h; m = months)");
  EXPECT_EQ(ParseError(Edit("    retention: {", "    retention: 5 #{")),
            "t.yaml:23:16: 'retention' in source 'docs' must be a mapping (key: value)");
  EXPECT_EQ(Parse(Edit("keep_last: 3", "keep_last: -1"), "t").Source("docs").retention.keep_last, -1);
  EXPECT_EQ(Parse(Edit("keep_last: 3", "keep_last: unlimited"), "t").Source("docs").retention.keep_last, -1);
}

// The full retention block and ttl: keep_within* are calendar durations where
// m is months (unlike timeout, where m is minutes).
const char kRetention[] = R"(version: 1
repositories: {r: {url: /r}}
sources:
  db:
    kind: command
    command: [pg_dump]
    timeout: 90m
    ttl: 1y6m
    retention:
      keep_hourly: 24
      keep_weekly: unlimited
      keep_within: 3m
      keep_within_hourly: 36h
      keep_within_daily: 4w
      keep_within_weekly: 1y5m7d2h
      keep_within_monthly: 2y
      keep_within_yearly: 10y
      keep_tags: ["release", "a,b", ""]
      group_by: [host, paths]
)";

TEST(ConfigTest, RetentionFullBlockAndTtl) {
  const Config c = Parse(kRetention, "t.yaml");
  const SourceConfig& db = c.Source("db");
  EXPECT_EQ(db.timeout_seconds, 90 * 60);
  ASSERT_TRUE(db.ttl.has_value());
  EXPECT_EQ(*db.ttl, (CalendarDuration{1, 6, 0, 0, 0}));
  const Retention& r = db.retention;
  EXPECT_EQ(r.keep_hourly, 24);
  EXPECT_EQ(r.keep_weekly, -1);
  EXPECT_EQ(r.keep_within, (CalendarDuration{0, 3, 0, 0, 0}));
  EXPECT_EQ(r.keep_within_hourly, (CalendarDuration{0, 0, 0, 0, 36}));
  EXPECT_EQ(r.keep_within_daily, (CalendarDuration{0, 0, 4, 0, 0}));
  EXPECT_EQ(r.keep_within_weekly, (CalendarDuration{1, 5, 0, 7, 2}));
  EXPECT_EQ(r.keep_within_monthly, (CalendarDuration{2, 0, 0, 0, 0}));
  EXPECT_EQ(r.keep_within_yearly, (CalendarDuration{10, 0, 0, 0, 0}));
  EXPECT_EQ(r.keep_tags, (std::vector<std::vector<std::string>>{{"release"}, {"a", "b"}, {""}}));
  ASSERT_TRUE(r.group_by.has_value());
  EXPECT_EQ(*r.group_by, (GroupBy{true, false, true, false}));
  EXPECT_FALSE(r.empty());
  EXPECT_TRUE(Retention{}.empty());
  Retention only_tags;
  only_tags.keep_tags = {{"x"}};
  EXPECT_FALSE(only_tags.empty());
}

TEST(ConfigTest, RetentionErrorsPointAtTheValue) {
  auto edit = [](const std::string& from, const std::string& to) { return Edit(from, to, kRetention); };
  EXPECT_EQ(ParseError(edit("keep_tags: [\"release\", \"a,b\"", "keep_tags: [\"release\", \"a,,b\"")),
            "t.yaml:18:30: 'keep_tags' in retention of source 'db': tag set 'a,,b' has an empty tag (write 'a,b' "
            "for snapshots having both a and b)");
  EXPECT_EQ(ParseError(edit("group_by: [host, paths]", "group_by: [hots, paths]")),
            "t.yaml:19:18: 'group_by' in retention of source 'db': unknown group-by field 'hots' (did you mean "
            "'host'?) (use a comma-separated list of host, source, paths, tags; '' for one group)");
  EXPECT_EQ(ParseError(edit("keep_within_daily: 4w", "keep_within_daily: 4w4w")),
            "t.yaml:14:26: 'keep_within_daily' in retention of source 'db': invalid duration '4w4w': unit 'w' given "
            "twice (want e.g. 36h, 7d, 4w, 3m, 1y or 1y5m7d2h; m = months)");
  EXPECT_EQ(ParseError(edit("ttl: 1y6m", "ttl: 0")), "t.yaml:8:10: 'ttl' in source 'db' must not be zero (leave it out for no expiry)");
  EXPECT_EQ(ParseError(edit("ttl: 1y6m", "ttl: 90s")),
            "t.yaml:8:10: 'ttl' in source 'db': invalid duration '90s': unknown unit 's' (use y, m, w, d or h) (want "
            "e.g. 36h, 7d, 4w, 3m, 1y or 1y5m7d2h; m = months)");
  EXPECT_EQ(ParseError(edit("keep_hourly: 24", "keep_hourly: -5")),
            "t.yaml:10:20: 'keep_hourly' in retention of source 'db': invalid count '-5': want 0..1000000, or -1 / "
            "unlimited to keep all");
  EXPECT_EQ(ParseError(edit("keep_hourly: 24", "keep_houry: 24")),
            "t.yaml:10:7: unknown key 'keep_houry' in retention of source 'db' (did you mean 'keep_hourly'?)");
}

TEST(ConfigTest, SelfReferentialAliasIsRejectedNotLooped) {
  EXPECT_EQ(ParseError("version: 1\nrepositories: &a {x: *a}\n"),
            "t.yaml:2:19: unknown key 'x' in repository 'x'");
  EXPECT_CONTAINS(ParseError("version: 1\nrepositories: {r: {url: /r}}\nsources:\n  s: {kind: fs, paths: &p [*p]}\n"),
                  "every element must be a string");
}

TEST(ConfigTest, SourceLookup) {
  const Config c = Parse(kExample, "bulwark.yaml");
  try {
    c.Source("dosc");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()), "unknown source 'dosc' (did you mean 'docs'?) (known sources: docs, etcd)");
  }
  const Config empty = Parse("version: 1\n", "e.yaml");
  try {
    empty.Source("x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()), "unknown source 'x' (no sources are defined in e.yaml)");
  }
}

TEST(ConfigTest, LoadFile) {
  char dir_template[] = "/tmp/bulwark_config_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string file = dir + "/bulwark.yaml";
  {
    std::ofstream out(file);
    out << kExample;
  }
  const Config c = LoadFile(file);
  EXPECT_EQ(c.path, file);
  EXPECT_EQ(c.Source("etcd").stdin_name, "etcd.db");

  {
    std::ofstream out(file);
    out << "version: 1\nbogus: 1\n";
  }
  try {
    LoadFile(file);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()), file + ":2:1: unknown key 'bogus' at top level");
  }

  try {
    LoadFile(dir + "/missing.yaml");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_CONTAINS(e.what(), dir + "/missing.yaml");
  }
  try {
    LoadFile(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_CONTAINS(e.what(), "is not a regular file");
  }
  std::remove(file.c_str());
  rmdir(dir.c_str());
}

TEST(ParseDurationTest, Valid) {
  EXPECT_EQ(ParseDuration("0"), 0);
  EXPECT_EQ(ParseDuration("0s"), 0);
  EXPECT_EQ(ParseDuration("30s"), 30);
  EXPECT_EQ(ParseDuration("15m"), 900);
  EXPECT_EQ(ParseDuration("6h"), 21600);
  EXPECT_EQ(ParseDuration("30d"), 2592000);
  EXPECT_EQ(ParseDuration("1w"), 604800);
  EXPECT_EQ(ParseDuration("1h30m"), 5400);
  EXPECT_EQ(ParseDuration("1w2d3h4m5s"), 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
  EXPECT_EQ(ParseDuration("90m"), 5400);
  EXPECT_EQ(ParseDuration("9223372036854775807s"), INT64_MAX);
}

TEST(ParseDurationTest, Invalid) {
  for (const char* s : {"", "30", "1h30", "h", "-1s", "1 h", " 1h", "1h ", "1H", "1ms", "1y", "1.5h", "+1h",
                        "9223372036854775808s", "15250284452472w", "9223372036854775807s1s"}) {
    try {
      ParseDuration(s);
      ADD_FAILURE() << "accepted '" << s << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_CONTAINS(e.what(), "invalid duration");
    }
  }
}

}  // namespace
}  // namespace bulwark::config
