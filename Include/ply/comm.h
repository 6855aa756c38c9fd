/*
 * ply/comm.h -- the Ply communicator ABI: what data-parallel training needs
 * from a communication engine (MPI today; Gloo, NCCL or UCC could implement it).
 *
 * A communicator is a shared library, built apart from Ply and loaded by the
 * host only when distributed training is asked for (`ply train --distributed`,
 * `Communicator.load` in Swift, `ply_comm_load` in C): Ply itself never links
 * an engine, so a machine without Open MPI builds and runs everything else.
 * The Open MPI implementation is Plugins/Comm/mpi/ply_comm_mpi.c, built with
 * `mpicc` by scripts/build-comm-mpi into `libplycomm_mpi.so` beside the layer
 * plugins. Its name does not start with `libply_`: the host loads every
 * `libply_*.so` in that directory as a *layer* plugin.
 *
 * Why a separate, tiny ABI rather than a layer plugin or a SwiftPM target:
 *  - a SwiftPM target linking libmpi would make Open MPI a build dependency
 *    of every Ply user; a library the host dlopen()s on demand does not;
 *  - data parallelism needs five collectives on flat float buffers, not
 *    tensors or layers: the interface stays small enough that a second
 *    engine is an afternoon's work.
 *
 * ------------------------------------------------------------------------
 * Versioning (as plugin.h)
 * ------------------------------------------------------------------------
 *  - PLY_COMM_ABI_MAJOR changes only when a field changes meaning or
 *    position; the host refuses another major version, naming both.
 *  - PLY_COMM_ABI_MINOR grows when fields are appended to ply_comm.
 *    The host MUST NOT read past ply_comm.struct_size; a callback beyond it
 *    is absent. Optional callbacks (marked OPTIONAL) may also be NULL.
 *
 * ------------------------------------------------------------------------
 * Life of a communicator
 * ------------------------------------------------------------------------
 *  1. The host dlopen()s the library and calls its one entry symbol,
 *     `ply_comm_entry` (PLY_COMM_ENTRY_SYMBOL), once per process. The entry
 *     initialises the engine (MPI_Init_thread), joins the job the launcher
 *     (mpirun) started, and returns a ply_comm it owns, or NULL with a
 *     message in `error`.
 *  2. The host calls the collectives any number of times. Every collective
 *     is called by every rank, in the same order, with the same counts
 *     (as MPI requires); a rank that skips one makes the others wait.
 *  3. The host calls finalize once (MPI_Finalize), after which it MUST NOT
 *     use the ply_comm again; or abort, which ends the whole job.
 *
 * ------------------------------------------------------------------------
 * Rules
 * ------------------------------------------------------------------------
 *  - Status: fallible callbacks return 0 on success and nonzero on failure;
 *    after a failure last_error(self) returns a message naming the call and
 *    the engine's reason, valid until the next call. A failed collective
 *    leaves its buffer unspecified; the host treats the job as broken (it
 *    reports the message and aborts, it does not retry).
 *  - Failure of a peer MUST NOT hang the others forever: an implementation
 *    either returns an error from the collective or lets the launcher end
 *    the job (Open MPI's mpirun kills every rank when one exits abnormally).
 *  - Threading: calls are serialized by the host (never two at once) but may
 *    come from any thread (MPI_THREAD_SERIALIZED). Buffers passed to a
 *    non-blocking call belong to the communicator until wait or test says
 *    the request is complete; the host MUST NOT read or write them before.
 *  - Ownership: the ply_comm, its strings and requests belong to the
 *    implementation; a request is freed by the wait or test that completes it.
 *  - A communicator MUST NOT exit the process (except abort), and SHOULD NOT
 *    print: errors go through last_error.
 *  - Counts are elements (float32) or bytes as stated, >= 0, and may exceed
 *    INT_MAX (the implementation splits them).
 */
#ifndef PLY_COMM_H
#define PLY_COMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PLY_COMM_ABI_MAJOR 1
#define PLY_COMM_ABI_MINOR 0
#define PLY_COMM_ENTRY_SYMBOL "ply_comm_entry"

/** One rank's handle on the job. Filled by the implementation (designated
 *  initializers); the host reads it within struct_size only. */
typedef struct ply_comm {
  /** sizeof(ply_comm) as the implementation compiled it. */
  uint32_t struct_size;
  /** PLY_COMM_ABI_MAJOR / MINOR of the implementation. */
  uint16_t abi_major, abi_minor;
  /** The implementation's state, passed back as `self` to every callback. */
  void *self;
  /** The engine in words ("Open MPI 4.1.4"), for logs. Static or owned by self. */
  const char *engine;
  /** This process's rank in 0..<world_size, and the number of ranks. */
  int32_t rank, world_size;
  /** This process's rank among those on the same host, and how many share
   *  it (the host divides the cores between them). */
  int32_t local_rank, local_size;

  /** In place: data[i] = sum over ranks of data[i], on every rank. The sum's
   *  order is the engine's (it may differ from a sequential sum by float
   *  rounding, but every rank receives the same bits). */
  int (*allreduce_sum_f32)(void *self, float *data, int64_t count);
  /** Non-blocking allreduce_sum_f32: starts it and returns a request in
   *  *request. The buffer is the communicator's until the request completes. */
  int (*iallreduce_sum_f32)(void *self, float *data, int64_t count, void **request);
  /** Drives progress; *done = 1 (and the request is freed) when complete,
   *  else 0. */
  int (*test)(void *self, void *request, int *done);
  /** Blocks until the request completes, then frees it. */
  int (*wait)(void *self, void *request);
  /** Copies `bytes` bytes from rank `root`'s buffer into every other rank's. */
  int (*broadcast)(void *self, void *data, int64_t bytes, int32_t root);
  /** Returns once every rank has called it. */
  int (*barrier)(void *self);
  /** The last failure's message (never NULL; "" when none). */
  const char *(*last_error)(void *self);
  /** Leaves the job (MPI_Finalize) and frees self. Every rank calls it. */
  int (*finalize)(void *self);
  /** Ends every rank of the job with exit status `code` (MPI_Abort): for a
   *  rank that fails alone, so that the others do not wait for it. */
  void (*abort)(void *self, int code);
} ply_comm;

/** The one symbol a communicator library exports. `host_major`/`host_minor`:
 *  the ABI the host was built against (the implementation refuses another
 *  major). On failure returns NULL with a message in `error` (NUL-terminated, at most
 *  `error_size` bytes). Called once per process. */
typedef ply_comm *(*ply_comm_entry_fn)(uint16_t host_major, uint16_t host_minor,
                                       char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif /* PLY_COMM_H */
