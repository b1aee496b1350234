// Fuzzes the tree decoder (Tree::Decode). Any input must decode or throw
// bulwark::Error; a decoded tree must hold only safe, sorted, unique names and
// must round-trip: Decode(Encode(t)) == t.
// Seeds: fuzz/corpus/tree_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/repo/tree.h"

using namespace bulwark;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  repo::Tree t;
  try {
    t = repo::Tree::Decode(ByteSpan(data, size), "fuzz tree");
  } catch (const Error&) {
    return 0;
  }
  for (size_t i = 0; i < t.nodes.size(); ++i) {
    if (!repo::IsSafeName(t.nodes[i].name)) abort();
    if (i > 0 && !(t.nodes[i - 1].name < t.nodes[i].name)) abort();
    // Directories (and only directories) reference a subtree.
    if ((t.nodes[i].type == repo::NodeType::kDir) == t.nodes[i].subtree.IsZero()) abort();
    if (t.nodes[i].type != repo::NodeType::kFile && !t.nodes[i].content.empty()) abort();
  }
  // Not caught from here on: any exception is a bug.
  repo::Tree copy = t;
  Bytes enc = copy.Encode();
  repo::Tree back = repo::Tree::Decode(enc, "fuzz tree re-decode");
  if (back.nodes != t.nodes) abort();
  if (back.Encode() != enc) abort();
  return 0;
}
