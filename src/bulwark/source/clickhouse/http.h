// A client for ClickHouse's HTTP interface (libcurl), as the `clickhouse`
// source uses it: statements in the request body, results streamed, inserts
// streamed from a reader. docs/CLICKHOUSE.md has the operator's view.
//
// Credentials go in the X-ClickHouse-User / X-ClickHouse-Key headers (ClickHouse
// 1.1.54xxx and later; 18.16 has them): never in the URL, never in argv, never
// in a message. URLs carry no user info and no query (NormalizeUrl refuses
// both), so a URL can be logged and stored in a snapshot's facts.
//
// Errors: ClickHouse answers a failed statement with a non-200 status and its
// exception text as the body ("Code: 60, e.displayText() = DB::Exception:
// Table db.t doesn't exist"). Every failure throws bulwark::Error naming the
// server and the statement (its first 300 characters):
//   "ClickHouse http://127.0.0.1:8123: SELECT ...: HTTP 404: Code: 60, ..."
// kPermission for an authentication failure (401/403), kSourceFailed for
// everything else the server or the connection does.
//
// A statement that fails after the server started answering (a streamed
// SELECT whose read breaks off half-way) is still a 200 response: the server
// appends its exception text to the body and ends it normally. Query and
// Rows avoid this by having the server buffer the whole result first
// (wait_end_of_query=1, in memory up to 1 MiB, then in its tmp_path); a
// streamed result must be checked by its reader (source/clickhouse/native.h
// validates a Native stream block by block), or be buffered on the server
// (Stream(..., buffer_on_server = true)).
//
// Thread-safety: a Client serves one thread at a time; a ResponseStream is
// independent of its Client once created.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bulwark::source::clickhouse {

// Where and as whom to connect.
struct Endpoint {
  std::string url;       // NormalizeUrl'd: "http://host:8123" (no user info, no query, no path)
  std::string user;      // "" = the server's `default` user, no headers sent
  std::string password;  // secret: only ever in the X-ClickHouse-Key header
  bool verify_tls = true;
  int connect_timeout_seconds = 10;
  // A transfer that moves less than 1 byte/s for this long fails (a dead
  // server or network). Transfers paused by a slow reader are not counted.
  int stall_seconds = 600;
};

// "http://h:8123", "https://h", "h:8123" -> scheme://host[:port] (http when
// no scheme is given; a trailing "/" dropped). Throws Error(kInvalidArgument)
// for another scheme, user info ("user:pw@"), a query or fragment, a path
// other than "/", or control characters.
std::string NormalizeUrl(const std::string& url);

// URL parameters of a request: ClickHouse settings ("max_block_size") and
// HTTP-interface options ("database", "wait_end_of_query").
using Params = std::vector<std::pair<std::string, std::string>>;

// A server version, "18.16.1" or "23.8.2.7".
struct ServerVersion {
  int major = 0, minor = 0, patch = 0;
  std::string text;
  bool AtLeast(int maj, int min) const { return major > maj || (major == maj && minor >= min); }
  // Throws Error(kSourceFailed) unless `s` starts with MAJOR.MINOR.
  static ServerVersion Parse(const std::string& s);
};

// A response body, read as it arrives. The transfer runs inside Read (libcurl
// multi interface): nothing is buffered beyond what one read of the socket
// delivers (at most ~4 MiB are held when the reader is slow: the transfer
// is paused).
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;  // an unfinished transfer is aborted
  // Up to `n` bytes of the body into `buf`; 0 at its end. Throws
  // Error(kSourceFailed / kPermission) naming server and statement when the
  // status is not 200 (with the server's exception text) or the transfer
  // fails (connection reset, a body cut short).
  virtual size_t Read(uint8_t* buf, size_t n) = 0;
  // Bytes returned by Read so far.
  virtual uint64_t bytes() const = 0;
};

class Client {
 public:
  explicit Client(Endpoint endpoint);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& url() const { return ep_.url; }
  const Endpoint& endpoint() const { return ep_; }

  // Runs a statement and returns the whole body (at most 256 MiB). The
  // server buffers the result before answering (wait_end_of_query=1), so a
  // failure anywhere is an error status. For DDL, small SELECTs, ALTERs.
  std::string Query(const std::string& sql, const Params& params = {});
  // Query(sql + " FORMAT TabSeparated"), each row split at tabs and each
  // field unescaped (ParseTsv).
  std::vector<std::vector<std::string>> Rows(const std::string& sql, const Params& params = {});
  // One value: the first field of the first row; throws kSourceFailed when
  // there is no row.
  std::string Value(const std::string& sql, const Params& params = {});

  // Starts a statement whose result is read through the returned stream
  // (the status is checked by the first Read). `buffer_on_server`: the
  // server computes the whole result before answering (wait_end_of_query=1,
  // spilling to its tmp_path), so that a failure is an error status instead
  // of text appended to the body; costs server disk and time to first byte.
  std::unique_ptr<ResponseStream> Stream(const std::string& sql, const Params& params = {},
                                         bool buffer_on_server = false);

  // Runs `sql` (an INSERT ... FORMAT X: the statement goes into the URL,
  // ?query=) with the request body read from `read` until it returns 0
  // (chunked transfer: no size needed). An exception thrown by `read` aborts
  // the request and is rethrown. Returns the bytes sent.
  uint64_t Insert(const std::string& sql, const std::function<size_t(uint8_t*, size_t)>& read,
                  const Params& params = {});

  // SELECT version(), once per Client.
  const ServerVersion& Version();
  // Whether system.settings has `name` (asked once per Client): settings
  // come and go between versions, and an unknown one is an error.
  bool HasSetting(const std::string& name);

 private:
  std::string Perform(const std::string& sql, const Params& params, size_t limit);

  Endpoint ep_;
  void* easy_ = nullptr;  // CURL*, reused for keep-alive between requests
  std::optional<ServerVersion> version_;
  std::optional<std::map<std::string, std::string>> settings_;
};

// Splits a TabSeparated body into rows and fields, undoing ClickHouse's
// escaping (\t \n \\ \0 \b \f \r \' \" \a \v \N, and \xHH). A body not
// ending in '\n' has its last line taken as a row too. Throws
// Error(kCorrupt) for a backslash at the end of a field.
std::vector<std::vector<std::string>> ParseTsv(const std::string& body);

// A statement shortened for messages: its first 300 characters, newlines as
// spaces, "..." when cut.
std::string ShortSql(const std::string& sql);

// Quotes a name for ClickHouse SQL with backquotes: `a\`b` (backquotes and
// backslashes escaped with a backslash, as ClickHouse writes them).
std::string QuoteName(const std::string& name);
// A string literal: 'it\'s' (quotes and backslashes escaped).
std::string QuoteString(const std::string& s);

}  // namespace bulwark::source::clickhouse
