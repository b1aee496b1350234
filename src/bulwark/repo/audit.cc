#include "bulwark/repo/audit.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <set>

#include "bulwark/base/error.h"
#include "bulwark/base/json.h"
#include "bulwark/base/parallel.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/snapshot.h"

namespace bulwark::repo {

using nlohmann::json;

namespace {

constexpr std::string_view kPrefix = "audit/";
constexpr size_t kSeqDigits = 20;  // enough for any uint64

std::string SeqString(uint64_t seq) {
  std::string s = std::to_string(seq);
  return std::string(kSeqDigits - s.size(), '0') + s;
}

json RefsJson(const std::vector<AuditRef>& refs) {
  json a = json::array();
  for (const auto& r : refs) a.push_back({{"seq", r.seq}, {"id", r.id.Hex()}});
  return a;
}

json IdsJson(const std::vector<Id>& ids) {
  json a = json::array();
  for (const auto& id : ids) a.push_back(id.Hex());
  return a;
}

std::vector<Id> DecodeIds(const json& j, const char* key, std::string_view what) {
  std::vector<Id> out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_array()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is not an array");
  for (const auto& v : *it) {
    Bytes b;
    if (!v.is_string() || v.get<std::string>().size() != 64 || !FromHex(v.get<std::string>(), &b))
      throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' holds a malformed id");
    out.push_back(Id::FromSpan(b));
  }
  return out;
}

}  // namespace

std::string AuditRef::Name() const { return std::string(kPrefix) + SeqString(seq) + "-" + id.Hex(); }

std::optional<AuditRef> AuditRef::Parse(std::string_view name) {
  if (name.substr(0, kPrefix.size()) == kPrefix) name.remove_prefix(kPrefix.size());
  if (name.size() != kSeqDigits + 1 + 64 || name[kSeqDigits] != '-') return std::nullopt;
  uint64_t seq = 0;
  for (size_t i = 0; i < kSeqDigits; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (seq > (UINT64_MAX - d) / 10) return std::nullopt;
    seq = seq * 10 + d;
  }
  std::string_view hex = name.substr(kSeqDigits + 1);
  Bytes b;
  // Lower case only: one spelling per record.
  if (std::any_of(hex.begin(), hex.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); }) ||
      !FromHex(hex, &b) || seq == 0)
    return std::nullopt;
  return AuditRef{seq, Id::FromSpan(b)};
}

json AuditRecord::ToJson() const {
  return json{{"version", 1},
              {"seq", seq},
              {"parents", RefsJson(parents)},
              {"host", host},
              {"username", username},
              {"uid", uid},
              {"key", key},
              {"command", command},
              {"args", args},
              {"result", result},
              {"exit_code", exit_code},
              {"error_code", error_code},
              {"error", error},
              {"snapshots_added", IdsJson(snapshots_added)},
              {"snapshots_removed", IdsJson(snapshots_removed)},
              {"start", FormatTime(start_ns)},
              {"start_ns", start_ns},
              {"duration_ns", duration_ns},
              {"program_version", program_version}};
}

Bytes AuditRecord::Encode() const {
  std::string s = ToJson().dump(-1, ' ', false, json::error_handler_t::replace);
  return Bytes(s.begin(), s.end());
}

AuditRecord AuditRecord::Decode(ByteSpan data, std::string_view what) {
  json j = json::parse(data.begin(), data.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": not a JSON object");
  if (JsonInt(j, "version", what) != 1)
    throw Error(ErrorCode::kUnsupported, std::string(what) + ": audit record version " + j["version"].dump() +
                                             " is not supported by this bulwark");
  AuditRecord r;
  r.seq = static_cast<uint64_t>(JsonInt(j, "seq", what, true, 0, 1));
  auto parents = j.find("parents");
  if (parents == j.end() || !parents->is_array())
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": field 'parents' is missing or not an array");
  for (const auto& p : *parents) {
    if (!p.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": a parent is not an object");
    AuditRef ref;
    ref.seq = static_cast<uint64_t>(JsonInt(p, "seq", what, true, 0, 1));
    Bytes b;
    std::string hex = JsonString(p, "id", what);
    if (hex.size() != 64 || !FromHex(hex, &b))
      throw Error(ErrorCode::kCorrupt, std::string(what) + ": a parent's id is malformed");
    ref.id = Id::FromSpan(b);
    r.parents.push_back(ref);
  }
  r.host = JsonString(j, "host", what);
  r.username = JsonString(j, "username", what, false);
  r.uid = static_cast<uint32_t>(JsonInt(j, "uid", what, false, 0, 0, UINT32_MAX));
  r.key = JsonString(j, "key", what, false);
  r.command = JsonString(j, "command", what);
  auto args = j.find("args");
  if (args != j.end()) {
    if (!args->is_array()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field 'args' is not an array");
    for (const auto& a : *args) {
      if (!a.is_string()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": an argument is not a string");
      r.args.push_back(a.get<std::string>());
    }
  }
  r.result = JsonString(j, "result", what);
  if (r.result != "ok" && r.result != "partial" && r.result != "error")
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": unknown result '" + r.result + "'");
  r.exit_code = static_cast<int>(JsonInt(j, "exit_code", what, false, 0, -1000, 1000));
  r.error_code = JsonString(j, "error_code", what, false);
  r.error = JsonString(j, "error", what, false);
  r.snapshots_added = DecodeIds(j, "snapshots_added", what);
  r.snapshots_removed = DecodeIds(j, "snapshots_removed", what);
  r.start_ns = JsonInt(j, "start_ns", what);
  r.duration_ns = JsonInt(j, "duration_ns", what, false, 0, 0);
  r.program_version = JsonString(j, "program_version", what, false);
  return r;
}

std::vector<AuditRef> AuditLog::ListRefs(std::vector<std::string>* malformed) const {
  std::vector<AuditRef> refs;
  for (const auto& o : backend_.List(std::string(kPrefix))) {
    if (auto ref = AuditRef::Parse(o.name))
      refs.push_back(*ref);
    else if (malformed)
      malformed->push_back(o.name);
  }
  std::sort(refs.begin(), refs.end());
  return refs;
}

std::vector<AuditRef> AuditLog::ListBlock(uint64_t block) const {
  // Block b holds sequence numbers [b * 1000, b * 1000 + 999]: the names
  // that share all but the last three digits.
  std::string prefix = std::string(kPrefix) + SeqString(block * kAuditBlock).substr(0, kSeqDigits - 3);
  std::vector<AuditRef> refs;
  for (const auto& o : backend_.List(prefix))
    if (auto ref = AuditRef::Parse(o.name)) refs.push_back(*ref);
  std::sort(refs.begin(), refs.end());
  return refs;
}

AuditRef AuditLog::Append(AuditRecord record) const {
  // The newest non-empty block, found by an exponential then a binary search
  // (blocks fill in order: sequence numbers have no gaps), so an append
  // lists O(log(records / 1000)) blocks of at most 1000 names, not the log.
  std::vector<AuditRef> refs = ListBlock(0);
  uint64_t lo = 0;
  if (!refs.empty()) {
    uint64_t hi = 1;
    for (std::vector<AuditRef> probe; hi < (UINT64_MAX / kAuditBlock) / 2 && !(probe = ListBlock(hi)).empty();
         hi *= 2) {
      lo = hi;
      refs = std::move(probe);
    }
    while (hi - lo > 1) {
      uint64_t mid = lo + (hi - lo) / 2;
      std::vector<AuditRef> probe = ListBlock(mid);
      if (probe.empty()) {
        hi = mid;
      } else {
        lo = mid;
        refs = std::move(probe);
      }
    }
  }
  uint64_t max = refs.empty() ? 0 : refs.back().seq;
  if (lo > 0 && max % kAuditBlock < kAuditWindow) {  // the window reaches into the block before
    std::vector<AuditRef> before = ListBlock(lo - 1);
    refs.insert(refs.begin(), before.begin(), before.end());
  }
  record.seq = max + 1;
  record.parents.clear();
  for (const auto& r : refs)
    if (r.seq + kAuditWindow > max) record.parents.push_back(r);  // seq in [max - window + 1, max]
  Bytes obj = SealObject(aead_, ObjectType::kAudit, record.Encode());
  AuditRef ref{record.seq, crypto::Sha256(obj)};
  backend_.Put(ref.Name(), obj);
  return ref;
}

namespace {

// Reads and checks one record: authentication, decoding, and that its name
// (sequence number and hash) matches its content.
struct Loaded {
  AuditRef ref;
  std::optional<AuditRecord> record;
  std::optional<AuditProblem> problem;
};

Loaded LoadOne(storage::Backend& backend, const crypto::Aead& aead, const AuditRef& ref) {
  Loaded l{ref, std::nullopt, std::nullopt};
  std::string name = ref.Name();
  std::string what = backend.Location() + "/" + name;
  auto fail = [&](const char* kind, const std::string& message) {
    l.problem = AuditProblem{ref.seq, name, kind, message};
  };
  Bytes obj;
  try {
    obj = backend.Get(name);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    fail("removed", "audit record " + name + " vanished while it was read");
    return l;
  }
  AuditRecord rec;
  try {
    rec = AuditRecord::Decode(OpenObject(aead, ObjectType::kAudit, obj, what), what);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorrupt && e.code() != ErrorCode::kUnsupported) throw;
    fail("altered", std::string(e.what()));
    return l;
  }
  if (crypto::Sha256(obj) != ref.id) {
    fail("moved", "audit record " + name + " is intact but its content hashes to " + crypto::Sha256(obj).Hex() +
                      ": it was renamed or copied from another name");
    return l;
  }
  if (rec.seq != ref.seq) {
    fail("moved", "audit record " + name + " holds sequence number " + std::to_string(rec.seq) +
                      ", not the one in its name: records were renamed or reordered");
    return l;
  }
  l.record = std::move(rec);
  return l;
}

}  // namespace

std::vector<AuditEntry> AuditLog::List(const std::function<void(const Error&)>& on_error) const {
  std::vector<AuditRef> refs = ListRefs(nullptr);
  std::vector<Loaded> loaded(refs.size());
  int threads = std::max(1, backend_.capabilities().max_connections);
  ParallelFor(refs.size(), threads, [&](size_t i) { loaded[i] = LoadOne(backend_, aead_, refs[i]); });
  std::vector<AuditEntry> out;
  for (auto& l : loaded) {
    if (l.problem) {
      Error e(ErrorCode::kCorrupt, l.problem->message);
      if (!on_error) throw e;
      on_error(e);
      continue;
    }
    out.push_back({l.ref, std::move(*l.record)});
  }
  std::sort(out.begin(), out.end(), [](const AuditEntry& a, const AuditEntry& b) {
    if (a.ref.seq != b.ref.seq) return a.ref.seq < b.ref.seq;
    if (a.record.start_ns != b.record.start_ns) return a.record.start_ns < b.record.start_ns;
    return a.ref.id < b.ref.id;
  });
  return out;
}

AuditVerifyReport AuditLog::Verify(const std::string& expect_head, int threads) const {
  AuditVerifyReport rep;
  std::vector<std::string> malformed;
  std::vector<AuditRef> refs = ListRefs(&malformed);
  rep.records = refs.size() + malformed.size();
  for (const auto& m : malformed)
    rep.problems.push_back({0, m, "malformed-name", "object " + m + " under audit/ is not named like an audit record"});

  std::vector<Loaded> loaded(refs.size());
  if (threads <= 0) threads = std::max(1, backend_.capabilities().max_connections);
  ParallelFor(refs.size(), threads, [&](size_t i) { loaded[i] = LoadOne(backend_, aead_, refs[i]); });

  std::set<AuditRef> present(refs.begin(), refs.end());
  std::map<uint64_t, int> per_seq;
  for (const auto& r : refs) per_seq[r.seq]++;
  rep.max_seq = refs.empty() ? 0 : refs.back().seq;
  for (const auto& [seq, n] : per_seq)
    if (n > 1) rep.forks++;

  // Sequence numbers 1..max must all be present: a gap is a removed record.
  uint64_t expect = 1;
  for (const auto& [seq, n] : per_seq) {
    if (seq > expect) {
      std::string range =
          seq - 1 == expect ? std::to_string(expect) : std::to_string(expect) + ".." + std::to_string(seq - 1);
      rep.problems.push_back({expect, std::string(kPrefix) + SeqString(expect) + "-*", "removed",
                              "no audit record with sequence number " + range + ": removed"});
    }
    expect = seq + 1;
  }

  std::set<AuditRef> named;
  for (auto& l : loaded) {
    if (l.problem) {
      rep.problems.push_back(*l.problem);
      continue;
    }
    const AuditRecord& rec = *l.record;
    std::string name = l.ref.Name();
    bool has_previous = false;
    for (const auto& p : rec.parents) {
      named.insert(p);
      if (p.seq >= rec.seq || p.seq + kAuditWindow < rec.seq) {
        rep.problems.push_back(
            {rec.seq, name, "broken-link", "audit record " + name + " names a parent outside its window: " + p.Name()});
        continue;
      }
      if (p.seq + 1 == rec.seq) has_previous = true;
      if (!present.count(p))
        rep.problems.push_back(
            {p.seq, p.Name(), "removed", "audit record " + p.Name() + " is missing (removed); " + name + " names it"});
    }
    if (rec.seq > 1 && !has_previous)
      rep.problems.push_back(
          {rec.seq, name, "broken-link",
           "audit record " + name + " names no record with sequence number " + std::to_string(rec.seq - 1)});
    if (rec.seq == 1 && !rec.parents.empty())
      rep.problems.push_back(
          {rec.seq, name, "broken-link", "audit record " + name + " is the first but names parents"});
  }

  for (const auto& r : refs) {
    if (named.count(r)) continue;
    rep.heads.push_back(r.Name());
    if (r.seq + kAuditWindow <= rep.max_seq) rep.unanchored.push_back(r.Name());
  }

  if (!expect_head.empty()) {
    auto want = AuditRef::Parse(expect_head);
    if (!want)
      throw Error(
          ErrorCode::kInvalidArgument,
          "'" + expect_head + "' is not an audit record name (audit/<seq>-<sha256> as 'audit verify' prints it)");
    if (!present.count(*want))
      rep.problems.push_back(
          {want->seq, want->Name(), "removed",
           "the expected head " + want->Name() + " is missing: the log was truncated or that record removed"});
  }

  // At one sequence number, a record that is there but wrong comes before one
  // that is missing: it is the better lead.
  auto rank = [](const std::string& kind) {
    for (int i = 0; std::string_view k : {"altered", "moved", "broken-link", "removed"}) {
      if (kind == k) return i;
      ++i;
    }
    return 4;
  };
  std::sort(rep.problems.begin(), rep.problems.end(), [&](const AuditProblem& a, const AuditProblem& b) {
    int ra = rank(a.kind), rb = rank(b.kind);
    return std::tie(a.seq, ra, a.name) < std::tie(b.seq, rb, b.name);
  });
  rep.problems.erase(std::unique(rep.problems.begin(), rep.problems.end(),
                                 [](const AuditProblem& a, const AuditProblem& b) {
                                   return a.seq == b.seq && a.name == b.name && a.kind == b.kind;
                                 }),
                     rep.problems.end());
  return rep;
}

// ---- redaction

const std::vector<std::string_view> kSecretOptions = {
    "--password",
    "--new-password",
    "--secret",
    "--token",
    "--bearer-token",
    "--api-token",
    "--auth-token",
    "--s3-access-key-id",
    "--s3-secret-access-key",
    "--s3-session-token",
    "--aws-secret-access-key",
    "--pushgateway-password",
};

namespace {

bool IsSecretKey(std::string_view key) {
  std::string k;
  for (char c : key) k.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (k.size() >= 4 && k.compare(k.size() - 4, 4, "file") == 0) return false;  // a path to a secret is not one
  for (std::string_view w : {"password", "passwd", "secret", "token", "credential"})
    if (k.find(w) != std::string::npos) return true;
  return false;
}

bool IsKeyChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; }

}  // namespace

std::string RedactText(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    // KEY=VALUE with a secret-looking key.
    if (c == '=' && i > 0) {
      size_t k = out.size();
      while (k > 0 && IsKeyChar(out[k - 1])) --k;
      if (k < out.size() && IsSecretKey(std::string_view(out).substr(k))) {
        out += "=***";
        ++i;
        // Skip the value: a quoted part (conninfo allows '...' with \' escapes),
        // then anything up to whitespace, '&' or ';'.
        if (i < text.size() && (text[i] == '\'' || text[i] == '"')) {
          char q = text[i++];
          while (i < text.size() && text[i] != q) i += text[i] == '\\' && i + 1 < text.size() ? 2 : 1;
          if (i < text.size()) ++i;
        }
        while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) && text[i] != '&' &&
               text[i] != ';')
          ++i;
        continue;
      }
    }
    // scheme://user:password@host -> scheme://user:***@host
    if (c == ':' && i + 2 < text.size() && text[i + 1] == '/' && text[i + 2] == '/') {
      size_t start = i + 3;
      // The user information ends at an '@' before the path.
      size_t at = text.find('@', start);
      size_t path = text.find_first_of("/?# \t\n", start);
      if (at != std::string_view::npos && (path == std::string_view::npos || at < path)) {
        std::string_view userinfo = text.substr(start, at - start);
        size_t colon = userinfo.find(':');
        out += "://";
        if (colon != std::string_view::npos) {
          out += userinfo.substr(0, colon);
          out += ":***";
        } else {
          out += userinfo;
        }
        out += '@';
        i = at + 1;
        continue;
      }
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

std::vector<std::string> RedactArguments(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  bool next_secret = false;
  for (const auto& a : args) {
    if (next_secret) {
      out.push_back("***");
      next_secret = false;
      continue;
    }
    bool handled = false;
    for (std::string_view opt : kSecretOptions) {
      if (a == opt) {
        out.push_back(a);
        next_secret = true;
        handled = true;
      } else if (a.size() > opt.size() && a.compare(0, opt.size(), opt) == 0 && a[opt.size()] == '=') {
        out.push_back(std::string(opt) + "=***");
        handled = true;
      }
      if (handled) break;
    }
    if (!handled) out.push_back(RedactText(a));
  }
  return out;
}

}  // namespace bulwark::repo
