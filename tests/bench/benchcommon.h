/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the throughput benchmarks measure and how: one round's figures, the
 * process's CPU time and a monotonic clock. */

#pragma once

#include <glib.h>
#include <sys/resource.h>

#include <cstddef>

namespace bench {

/* One round of one contender. */
struct Result
{
  double seconds = 0;
  double cpu = 0;
  /* From the start to the first message (consumers only). */
  double startup = 0;
  size_t messages = 0;
  size_t bytes = 0;

  double msgs_per_s () const
  {
    return messages / seconds;
  }
  double mb_per_s () const
  {
    return bytes / seconds / 1e6;
  }
  double cpu_per_gb () const
  {
    return cpu / (bytes / 1e9);
  }
};

/* User plus system CPU seconds of this process so far. */
inline double
cpu_seconds ()
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

inline double
now_seconds ()
{
  return g_get_monotonic_time () / 1e6;
}

} // namespace bench
