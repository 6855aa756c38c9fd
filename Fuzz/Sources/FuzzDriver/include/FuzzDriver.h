/* See FuzzDriver.c. Nothing to call from Swift; the module exists for its symbols. */
#ifndef PLY_FUZZ_DRIVER_H
#define PLY_FUZZ_DRIVER_H
#endif
