// Names the calling thread, so that `top -H`, `ps -L`, perf and gdb show
// what each of a node's threads is (a log writer, a replica's worker, an
// HTTP loop) instead of a column of "yantra". Linux keeps at most 15 bytes;
// longer names are cut there. Best effort: a failure changes nothing else.
#pragma once

#include <string>
#include <string_view>

namespace yantra {

void name_this_thread(std::string_view name);

}  // namespace yantra
