// name_this_thread (base/thread_name.hpp).
#include "base/thread_name.hpp"

#include <pthread.h>

namespace yantra {

void name_this_thread(std::string_view name) {
  std::string cut(name.substr(0, 15));  // the kernel's limit, without the NUL
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace yantra
