// bulwark snapshots / ls / diff / stats / cat.
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <unordered_set>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/ops/restore.h"
#include "bulwark/repo/format.h"

namespace bulwark::cli {

using nlohmann::json;
using repo::Node;
using repo::NodeType;

namespace {

std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else out += static_cast<char>(c);
  }
  return out;
}

json NodeJson(const Node& n, const std::string& path) {
  json j = {{"path", path},     {"name", n.name},       {"type", std::string(repo::NodeTypeName(n.type))},
            {"mode", n.mode},   {"uid", n.uid},         {"gid", n.gid},
            {"user", n.user},   {"group", n.group},     {"size", n.size},
            {"mtime", repo::FormatTime(n.mtime_ns)}};
  if (n.type == NodeType::kSymlink) j["link_target"] = n.link_target;
  if (n.type == NodeType::kDir) j["subtree"] = n.subtree.Hex();
  if (n.type == NodeType::kFile) {
    json c = json::array();
    for (const auto& id : n.content) c.push_back(id.Hex());
    j["content"] = c;
  }
  if (!n.xattrs.empty()) {
    json x = json::object();
    for (const auto& [k, v] : n.xattrs) x[k] = v;
    j["xattrs"] = x;
  }
  return j;
}

std::string ModeString(const Node& n) {
  std::string s(10, '-');
  switch (n.type) {
    case NodeType::kDir: s[0] = 'd'; break;
    case NodeType::kSymlink: s[0] = 'l'; break;
    case NodeType::kFifo: s[0] = 'p'; break;
    case NodeType::kCharDev: s[0] = 'c'; break;
    case NodeType::kBlockDev: s[0] = 'b'; break;
    case NodeType::kSocket: s[0] = 's'; break;
    default: break;
  }
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i)
    if (n.mode & (1u << (8 - i))) s[1 + i] = rwx[i];
  return s;
}

// Walks a tree depth-first calling fn(path, node).
void WalkTree(repo::Repository& repo, const Id& tree, const std::string& path,
              const std::function<void(const std::string&, const Node&)>& fn) {
  repo::Tree t = repo.LoadTree(tree);
  for (const auto& n : t.nodes) {
    std::string p = (path == "/" ? "/" : path + "/") + n.name;
    fn(p, n);
    if (n.type == NodeType::kDir) WalkTree(repo, n.subtree, p, fn);
  }
}

}  // namespace

void AddInspect(CLI::App& app) {
  // snapshots
  {
    auto f = std::make_shared<SnapshotFilterFlags>();
    auto* cmd = app.add_subcommand("snapshots", "list snapshots");
    AddFilterFlags(cmd, f.get());
    cmd->callback([f] {
      auto repo = OpenRepository(false, f->source);
      auto filter = f->Filter();
      json arr = json::array();
      std::vector<repo::Snapshot> list;
      for (auto& s : repo->LoadSnapshots([](const Error& e) { log::Err(e.what()); }))
        if (filter.Matches(s)) list.push_back(s);
      if (G().json) {
        for (auto& s : list) {
          json j = s.ToJson(true);  // has "expires" when the snapshot has a TTL
          j["pinned"] = s.pinned();
          arr.push_back(std::move(j));
        }
        PrintJson(arr);
        return;
      }
      std::printf("%-8s  %-19s  %-12s  %-10s  %-12s  %-19s  %s\n", "ID", "Time (UTC)", "Host", "Source", "Tags",
                  "Expires (UTC)", "Paths");
      for (auto& s : list) {
        std::string tags, paths;
        for (auto& t : s.tags) tags += (tags.empty() ? "" : ",") + t;
        for (auto& p : s.paths) paths += (paths.empty() ? "" : " ") + p;
        const std::string expires = s.expires_ns ? repo::FormatTimeShort(*s.expires_ns) : "-";
        std::printf("%-8s  %-19s  %-12s  %-10s  %-12s  %-19s  %s%s%s\n", s.id.Short().c_str(),
                    repo::FormatTimeShort(s.time_ns).c_str(), s.host.c_str(), s.source.c_str(), tags.c_str(), expires.c_str(),
                    paths.c_str(), s.partial ? "  (partial)" : "", s.pinned() ? "  (pinned)" : "");
      }
      std::printf("%zu snapshots\n", list.size());
    });
  }
  // ls
  {
    struct Opts {
      std::string snapshot, path;
      bool long_format = false, recursive = true;
      SnapshotFilterFlags f;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("ls", "list the entries of a snapshot");
    cmd->add_option("snapshot", o->snapshot, "snapshot id, prefix or 'latest'")->required();
    cmd->add_option("path", o->path, "list only below this path");
    cmd->add_flag("-l,--long", o->long_format, "show mode, owner, size and time");
    AddFilterFlags(cmd, &o->f);
    cmd->callback([o] {
      auto repo = OpenRepository(true, o->f.source);
      auto snap = repo->ResolveSnapshot(o->snapshot, o->f.Filter());
      std::string root = o->path.empty() ? "/" : o->path;
      while (root.size() > 1 && root.back() == '/') root.pop_back();
      Node start = ops::FindNode(*repo, snap, root);
      auto print = [&](const std::string& p, const Node& n) {
        if (G().json) {
          PrintJson(NodeJson(n, p));
        } else if (o->long_format) {
          std::printf("%s %5u %5u %12llu %s %s%s\n", ModeString(n).c_str(), n.uid, n.gid,
                      static_cast<unsigned long long>(n.size), repo::FormatTime(n.mtime_ns).substr(0, 19).c_str(),
                      Printable(p).c_str(), n.type == NodeType::kSymlink ? (" -> " + Printable(n.link_target)).c_str() : "");
        } else {
          std::printf("%s\n", Printable(p).c_str());
        }
      };
      if (start.type == NodeType::kDir) WalkTree(*repo, start.subtree, root, print);
      else print(root, start);
    });
  }
  // diff
  {
    struct Opts {
      std::string a, b;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("diff", "show what changed between two snapshots");
    cmd->add_option("a", o->a, "older snapshot")->required();
    cmd->add_option("b", o->b, "newer snapshot")->required();
    cmd->callback([o] {
      auto repo = OpenRepository(true);
      auto sa = repo->ResolveSnapshot(o->a, {});
      auto sb = repo->ResolveSnapshot(o->b, {});
      std::map<std::string, Node> ma, mb;
      WalkTree(*repo, sa.tree, "/", [&](const std::string& p, const Node& n) { ma[p] = n; });
      WalkTree(*repo, sb.tree, "/", [&](const std::string& p, const Node& n) { mb[p] = n; });
      uint64_t added = 0, removed = 0, changed = 0;
      json changes = json::array();
      auto emit = [&](char c, const std::string& p, const std::string& what) {
        if (G().json) changes.push_back({{"change", std::string(1, c)}, {"path", p}, {"what", what}});
        else std::printf("%c  %s%s\n", c, Printable(p).c_str(), what.empty() ? "" : ("  (" + what + ")").c_str());
      };
      for (auto& [p, n] : ma) {
        auto it = mb.find(p);
        if (it == mb.end()) {
          emit('-', p, "");
          removed++;
          continue;
        }
        const Node& m = it->second;
        std::string what;
        if (n.type != m.type) what = "type";
        else if (n.content != m.content) what = "content";
        else if (n.mode != m.mode || n.uid != m.uid || n.gid != m.gid || n.mtime_ns != m.mtime_ns ||
                 n.link_target != m.link_target || n.xattrs != m.xattrs)
          what = "metadata";
        if (!what.empty() && !(n.type == NodeType::kDir && what == "metadata" && n.mtime_ns != m.mtime_ns && n.mode == m.mode)) {
          emit('M', p, what);
          changed++;
        }
      }
      for (auto& [p, n] : mb)
        if (!ma.count(p)) {
          emit('+', p, "");
          added++;
        }
      if (G().json)
        PrintJson({{"a", sa.id.Hex()}, {"b", sb.id.Hex()}, {"added", added}, {"removed", removed}, {"changed", changed}, {"changes", changes}});
      else
        std::printf("%llu added, %llu removed, %llu changed\n", static_cast<unsigned long long>(added),
                    static_cast<unsigned long long>(removed), static_cast<unsigned long long>(changed));
    });
  }
  // stats
  {
    auto o = std::make_shared<std::string>();
    auto f = std::make_shared<SnapshotFilterFlags>();
    auto* cmd = app.add_subcommand("stats", "sizes: restore size of snapshots and what the repository stores");
    cmd->add_option("snapshot", *o, "only this snapshot (default: all)");
    AddFilterFlags(cmd, f.get());
    cmd->callback([o, f] {
      auto repo = OpenRepository(true, f->source);
      std::vector<repo::Snapshot> snaps;
      if (!o->empty()) snaps.push_back(repo->ResolveSnapshot(*o, f->Filter()));
      else
        for (auto& s : repo->LoadSnapshots([](const Error& e) { log::Err(e.what()); }))
          if (f->Filter().Matches(s)) snaps.push_back(s);
      uint64_t restore_size = 0, files = 0;
      std::unordered_set<Id, IdHash> blobs, trees;
      uint64_t unique_raw = 0, unique_stored = 0;
      for (auto& s : snaps) {
        std::function<void(const Id&)> walk = [&](const Id& t) {
          if (!trees.insert(t).second) return;
          for (auto& n : repo->LoadTree(t).nodes) {
            if (n.type == NodeType::kDir) walk(n.subtree);
            if (n.type == NodeType::kFile) {
              files++;
              restore_size += n.size;
              for (auto& id : n.content)
                if (blobs.insert(id).second)
                  if (auto loc = repo->index().Find(id)) {
                    unique_raw += loc->blob.raw_length;
                    unique_stored += loc->blob.length;
                  }
            }
          }
        };
        walk(s.tree);
      }
      uint64_t repo_size = 0, packs = 0;
      for (auto& ob : repo->backend().List("data/")) {
        repo_size += ob.size;
        packs++;
      }
      for (const char* p : {"index/", "snapshots/", "keys/", "wal/"})
        for (auto& ob : repo->backend().List(p)) repo_size += ob.size;
      if (G().json) {
        PrintJson({{"snapshots", snaps.size()}, {"files", files}, {"restore_size_bytes", restore_size},
                   {"unique_blobs", blobs.size()}, {"unique_raw_bytes", unique_raw}, {"unique_stored_bytes", unique_stored},
                   {"repository_size_bytes", repo_size}, {"packs", packs}, {"index_blobs", repo->index().blob_count()}});
        return;
      }
      std::printf("snapshots:              %zu\n", snaps.size());
      std::printf("files (all snapshots):  %llu\n", static_cast<unsigned long long>(files));
      std::printf("restore size:           %s\n", HumanBytes(restore_size).c_str());
      std::printf("unique data:            %s in %zu blobs (%s stored)\n", HumanBytes(unique_raw).c_str(), blobs.size(),
                  HumanBytes(unique_stored).c_str());
      if (restore_size > 0)
        std::printf("deduplication+compression ratio: %.2fx\n", double(restore_size) / double(std::max<uint64_t>(unique_stored, 1)));
      std::printf("repository size:        %s in %llu packs\n", HumanBytes(repo_size).c_str(), static_cast<unsigned long long>(packs));
    });
  }
  // cat
  {
    struct Opts {
      std::string type, id;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("cat", "print a repository object as JSON (config, snapshot, index, pack, key, tree, blob)");
    cmd->add_option("type", o->type, "config|snapshot|index|pack|key|tree|blob")->required()
        ->check(CLI::IsMember({"config", "snapshot", "index", "pack", "key", "tree", "blob"}));
    cmd->add_option("id", o->id, "object id or unique prefix (snapshot also 'latest')");
    cmd->callback([o] {
      bool need_index = o->type == "tree" || o->type == "blob";
      auto repo = OpenRepository(need_index);
      if (o->type != "config" && o->id.empty()) throw Error(ErrorCode::kInvalidArgument, "cat " + o->type + " needs an id");
      auto resolve = [&](const std::string& prefix, const char* what) {
        return repo::ResolvePrefix(repo->backend().List(prefix), o->id, what);
      };
      if (o->type == "config") {
        const auto& c = repo->config();
        Bytes b = c.Encode();
        json j = json::parse(b.begin(), b.end());
        j["chunker"]["seed"] = "(secret)";
        PrintJson(j);
      } else if (o->type == "snapshot") {
        PrintJson(repo->ResolveSnapshot(o->id, {}).ToJson(true));
      } else if (o->type == "index") {
        Id id = resolve("index/", "index");
        auto f = repo::IndexFile::Decode(repo->LoadUnpacked(repo::ObjectType::kIndex, id), o->id);
        json packs = json::array();
        for (auto& p : f.packs) {
          json blobs = json::array();
          for (auto& b : p.blobs)
            blobs.push_back({{"id", b.id.Hex()}, {"type", b.type == repo::BlobType::kTree ? "tree" : "data"},
                             {"offset", b.offset}, {"length", b.length}, {"raw_length", b.raw_length}, {"compressed", b.compressed}});
          packs.push_back({{"id", p.id.Hex()}, {"blobs", blobs}});
        }
        json sup = json::array();
        for (auto& s : f.supersedes) sup.push_back(s.Hex());
        PrintJson({{"id", id.Hex()}, {"packs", packs}, {"supersedes", sup}});
      } else if (o->type == "pack") {
        std::string hex = o->id;
        std::vector<storage::ObjectInfo> all = repo->backend().List(hex.size() >= 2 ? "data/" + hex.substr(0, 2) + "/" : "data/");
        Id id = repo::ResolvePrefix(all, hex, "pack");
        Bytes data = repo->backend().Get(repo::Repository::ObjectName(repo::ObjectType::kPack, id));
        auto blobs = repo::ParsePack(repo->aead(), data, "pack " + id.Short());
        json arr = json::array();
        for (auto& b : blobs)
          arr.push_back({{"id", b.id.Hex()}, {"type", b.type == repo::BlobType::kTree ? "tree" : "data"},
                         {"offset", b.offset}, {"length", b.length}, {"raw_length", b.raw_length}, {"compressed", b.compressed}});
        PrintJson({{"id", id.Hex()}, {"size", data.size()}, {"sha256_ok", crypto::Sha256(data) == id}, {"blobs", arr}});
      } else if (o->type == "key") {
        Id id = resolve("keys/", "key");
        Bytes data = repo->backend().Get(repo::Repository::ObjectName(repo::ObjectType::kKey, id));
        json j = json::parse(data.begin() + repo::kEnvelopeSize, data.end());
        j["master_key"] = "(sealed)";
        PrintJson(j);
      } else if (o->type == "tree") {
        Id id = Id::FromHexOrThrow(o->id);
        repo::Tree t = repo->LoadTree(id);
        json arr = json::array();
        for (auto& n : t.nodes) arr.push_back(NodeJson(n, n.name));
        PrintJson({{"id", id.Hex()}, {"nodes", arr}});
      } else {
        Bytes b = repo->LoadBlob(Id::FromHexOrThrow(o->id));
        std::fwrite(b.data(), 1, b.size(), stdout);
      }
    });
  }
}

}  // namespace bulwark::cli
