/*
 * The report: one line per check, PASS / FAIL / SKIP and a message that names
 * the type, the field, the value given and the value expected; detail lines
 * (plugin log messages) indented under them; a summary line at the end.
 * Everything goes to stdout, in order, behind one mutex (the host's log may
 * be called from parallel_for threads).
 */
#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool quiet_mode;
static int passed, failed, skipped;
static char doing[512] = "starting";

void report_init(bool quiet) { quiet_mode = quiet; }

static void line(const char *tag, bool show, const char *format, va_list args) {
    pthread_mutex_lock(&lock);
    if (show) {
        if (tag) printf("%-4s  ", tag);
        vprintf(format, args);
        putchar('\n');
        fflush(stdout);
    }
    pthread_mutex_unlock(&lock);
}

void report_section(const char *format, ...) {
    va_list args;
    if (quiet_mode) return;
    pthread_mutex_lock(&lock);
    putchar('\n');
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    putchar('\n');
    pthread_mutex_unlock(&lock);
}

void report_pass(const char *format, ...) {
    va_list args;
    va_start(args, format);
    passed++;
    line("PASS", !quiet_mode, format, args);
    va_end(args);
}

void report_fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    failed++;
    line("FAIL", true, format, args);
    va_end(args);
}

void report_skip(const char *format, ...) {
    va_list args;
    va_start(args, format);
    skipped++;
    line("SKIP", !quiet_mode, format, args);
    va_end(args);
}

void report_note(const char *format, ...) {
    va_list args;
    va_start(args, format);
    line("    ", !quiet_mode, format, args);
    va_end(args);
}

void report_doing(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(doing, sizeof doing, format, args);
    va_end(args);
}

int report_failures(void) { return failed; }

int report_summary(void) {
    printf("\nply-plugin-check: %d passed, %d failed", passed, failed);
    if (skipped) printf(", %d skipped", skipped);
    putchar('\n');
    fflush(stdout);
    return failed ? 1 : 0;
}

/* Async-signal-safe last words: what was running when the plugin crashed. */
static void put(const char *s) {
    ssize_t ignored = write(STDOUT_FILENO, s, strlen(s));
    (void)ignored;
}

static void crashed(int sig) {
    const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGFPE ? "SIGFPE"
                     : sig == SIGILL ? "SIGILL" : "SIGABRT";
    put("FAIL  the plugin crashed (");
    put(name);
    put(") during: ");
    put(doing);
    put("\n\nply-plugin-check: crashed, 1 failed (checks after this one did not run)\n");
    _exit(1);
}

void report_install_crash_handler(void) {
    static const int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = crashed;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaction(signals[i], &sa, NULL);
}
