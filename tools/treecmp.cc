// bulwark-treecmp: exhaustively compares two directory trees.
//
//   bulwark-treecmp [--ignore-atime] [--compare-atime] [--json] SRC DST
//
// Exit status: 0 identical, 1 different, 2 usage error (or a root that
// cannot be stat'ed). See tests/e2e/treecmp_lib.h for what is compared.
// atime is not compared unless --compare-atime is given; --ignore-atime is
// accepted for explicitness and is the default.
//
// The comparison logic lives in tests/e2e/treecmp_lib.cc, included here so
// that this tool is a single, standalone translation unit.
#include "../tests/e2e/treecmp_lib.cc"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kMaxLines = 200;

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: bulwark-treecmp [--ignore-atime] [--compare-atime] [--json] SRC DST\n"
               "Compares two directory trees (names, types, modes, owners, mtimes, contents,\n"
               "symlink targets, devices, xattrs, hard links, holes). Exit status: 0 if\n"
               "identical, 1 if different, 2 on usage error.\n");
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // differences are ASCII or valid UTF-8
        }
    }
  }
  return out + "\"";
}

std::string Counts(const bulwark::testing::CompareResult& r) {
  return std::to_string(r.entries) + " entries (" + std::to_string(r.files) + " files, " +
         std::to_string(r.dirs) + " dirs, " + std::to_string(r.symlinks) + " symlinks, " +
         std::to_string(r.others) + " other), " + std::to_string(r.bytes) + " bytes";
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  bool ignore_atime = true;
  std::vector<std::string> args;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (!options_done && a == "--") {
      options_done = true;
    } else if (!options_done && a == "--json") {
      json = true;
    } else if (!options_done && a == "--ignore-atime") {
      ignore_atime = true;
    } else if (!options_done && a == "--compare-atime") {
      ignore_atime = false;
    } else if (!options_done && (a == "-h" || a == "--help")) {
      Usage(stdout);
      return 0;
    } else if (!options_done && a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "bulwark-treecmp: unknown option %s\n", a.c_str());
      Usage(stderr);
      return 2;
    } else {
      args.push_back(a);
    }
  }
  if (args.size() != 2) {
    Usage(stderr);
    return 2;
  }
  for (const auto& root : args) {
    struct stat st;
    if (::stat(root.c_str(), &st) != 0) {
      std::fprintf(stderr, "bulwark-treecmp: %s: %s\n",
                   bulwark::testing::EscapeBytes(root).c_str(), std::strerror(errno));
      return 2;
    }
  }

  const auto r = bulwark::testing::CompareTrees(args[0], args[1], ignore_atime);

  if (json) {
    std::string out = "{\"identical\": ";
    out += r.identical ? "true" : "false";
    out += ", \"entries\": " + std::to_string(r.entries);
    out += ", \"files\": " + std::to_string(r.files);
    out += ", \"dirs\": " + std::to_string(r.dirs);
    out += ", \"symlinks\": " + std::to_string(r.symlinks);
    out += ", \"others\": " + std::to_string(r.others);
    out += ", \"bytes\": " + std::to_string(r.bytes);
    out += ", \"difference_count\": " + std::to_string(r.differences.size());
    out += ", \"differences\": [";
    for (size_t i = 0; i < r.differences.size(); ++i) {
      if (i) out += ", ";
      out += JsonString(r.differences[i]);
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
  } else if (r.identical) {
    std::printf("identical: %s\n", Counts(r).c_str());
  } else {
    for (size_t i = 0; i < r.differences.size() && i < kMaxLines; ++i) {
      std::printf("%s\n", r.differences[i].c_str());
    }
    if (r.differences.size() > kMaxLines) {
      std::printf("... %zu more differences not shown\n", r.differences.size() - kMaxLines);
    }
    std::printf("different: %zu differences; compared %s\n", r.differences.size(),
                Counts(r).c_str());
  }
  return r.identical ? 0 : 1;
}
