/* Linked into the exim-coverage build (scripts/build-exim-coverage.sh) with -Wl,--wrap=_exit.
 *
 * Exim ends its forked children -- the SMTP session of an inbound connection (smtp_in.c), the
 * delivery process and its remote-transport subprocesses (deliver.c, transports/smtp.c, TLS,
 * DANE) -- with _exit() (exim_underbar_exit), which skips the atexit handler that writes gcov's
 * counters: without this, most of the code a conformance run exercises would count as never
 * run. Every call to _exit() in Exim's objects goes here instead: write the counters, then exit.
 * (fork() and the exec*() family are already handled by gcc's own __gcov_fork/__gcov_execv.)
 * This file is compiled without --coverage. */

extern void __gcov_dump(void);
extern void __real__exit(int status) __attribute__((noreturn));

void __wrap__exit(int status) __attribute__((noreturn));

void __wrap__exit(int status)
{
  __gcov_dump();
  __real__exit(status);
}
