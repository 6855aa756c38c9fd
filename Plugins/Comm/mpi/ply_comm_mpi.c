/*
 * ply_comm_mpi.c -- the Ply communicator (Include/ply/comm.h) on Open MPI.
 *
 * Not a SwiftPM target: Ply must build without Open MPI. scripts/build-comm-mpi
 * compiles it with `mpicc` into libplycomm_mpi.so beside the layer plugins,
 * and the host dlopen()s it only for distributed training.
 *
 * Engine choices:
 *  - MPI_Init_thread(MPI_THREAD_SERIALIZED): comm.h lets the host call from any
 *    thread, one call at a time.
 *  - MPI_ERRORS_RETURN on the private duplicate of MPI_COMM_WORLD: a broken
 *    connection returns an error with MPI_Error_string's reason (the host
 *    reports it and aborts) instead of MPI's default of aborting silently from
 *    inside the library. A rank that dies outright is noticed by mpirun, which
 *    ends the other ranks: nobody waits forever.
 *  - Counts above INT_MAX are split into INT_MAX-element pieces (MPI counts
 *    are int).
 */
#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ply/comm.h"

#define PLY_COMM_MPI_EXPORT __attribute__((visibility("default")))

typedef struct mpi_state {
    MPI_Comm world;    /* a duplicate of MPI_COMM_WORLD: errors return, not abort */
    int we_initialised; /* MPI_Init_thread was ours: finalize calls MPI_Finalize */
    char engine[MPI_MAX_LIBRARY_VERSION_STRING];
    char error[512];
} mpi_state;

/* A non-blocking allreduce: one MPI request per INT_MAX-element piece. */
typedef struct mpi_request {
    int count;
    MPI_Request pieces[];
} mpi_request;

static int fail(mpi_state *s, int code, const char *fmt, ...) {
    char reason[MPI_MAX_ERROR_STRING] = "";
    int length = 0;
    if (code != MPI_SUCCESS && MPI_Error_string(code, reason, &length) != MPI_SUCCESS) {
        snprintf(reason, sizeof reason, "MPI error %d", code);
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof s->error && reason[0]) {
        snprintf(s->error + n, sizeof s->error - (size_t)n, ": %s", reason);
    }
    return 1;
}

static int pieces_of(int64_t count) { return count <= 0 ? 0 : (int)((count + INT_MAX - 1) / INT_MAX); }

static int allreduce_sum_f32(void *self, float *data, int64_t count) {
    mpi_state *s = self;
    if (count < 0) return fail(s, MPI_SUCCESS, "allreduce: count %lld is negative", (long long)count);
    for (int64_t done = 0; done < count; done += INT_MAX) {
        int n = (int)(count - done < INT_MAX ? count - done : INT_MAX);
        int rc = MPI_Allreduce(MPI_IN_PLACE, data + done, n, MPI_FLOAT, MPI_SUM, s->world);
        if (rc != MPI_SUCCESS) return fail(s, rc, "MPI_Allreduce of %d floats", n);
    }
    return 0;
}

static int iallreduce_sum_f32(void *self, float *data, int64_t count, void **request) {
    mpi_state *s = self;
    if (count < 0) return fail(s, MPI_SUCCESS, "iallreduce: count %lld is negative", (long long)count);
    int k = pieces_of(count);
    mpi_request *r = malloc(sizeof *r + (size_t)(k > 0 ? k : 1) * sizeof(MPI_Request));
    if (!r) return fail(s, MPI_SUCCESS, "iallreduce: out of memory for a request");
    r->count = 0;
    for (int64_t done = 0; done < count; done += INT_MAX) {
        int n = (int)(count - done < INT_MAX ? count - done : INT_MAX);
        int rc = MPI_Iallreduce(MPI_IN_PLACE, data + done, n, MPI_FLOAT, MPI_SUM, s->world, &r->pieces[r->count]);
        if (rc != MPI_SUCCESS) {
            /* the pieces already started cannot be cancelled (collectives): the job is broken */
            free(r);
            return fail(s, rc, "MPI_Iallreduce of %d floats", n);
        }
        r->count++;
    }
    *request = r;
    return 0;
}

static int test(void *self, void *request, int *done) {
    mpi_state *s = self;
    mpi_request *r = request;
    int flag = 0;
    int rc = MPI_Testall(r->count, r->pieces, &flag, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return fail(s, rc, "MPI_Testall (a gradient allreduce)");
    *done = flag;
    if (flag) free(r);
    return 0;
}

static int wait(void *self, void *request) {
    mpi_state *s = self;
    mpi_request *r = request;
    int rc = MPI_Waitall(r->count, r->pieces, MPI_STATUSES_IGNORE);
    free(r);
    if (rc != MPI_SUCCESS) return fail(s, rc, "MPI_Waitall (a gradient allreduce)");
    return 0;
}

static int broadcast(void *self, void *data, int64_t bytes, int32_t root) {
    mpi_state *s = self;
    if (bytes < 0) return fail(s, MPI_SUCCESS, "broadcast: byte count %lld is negative", (long long)bytes);
    for (int64_t done = 0; done < bytes; done += INT_MAX) {
        int n = (int)(bytes - done < INT_MAX ? bytes - done : INT_MAX);
        int rc = MPI_Bcast((char *)data + done, n, MPI_BYTE, root, s->world);
        if (rc != MPI_SUCCESS) return fail(s, rc, "MPI_Bcast of %d bytes from rank %d", n, (int)root);
    }
    return 0;
}

static int barrier(void *self) {
    mpi_state *s = self;
    int rc = MPI_Barrier(s->world);
    return rc == MPI_SUCCESS ? 0 : fail(s, rc, "MPI_Barrier");
}

static const char *last_error(void *self) { return ((mpi_state *)self)->error; }

static int finalize(void *self) {
    mpi_state *s = self;
    MPI_Comm_free(&s->world);
    int rc = s->we_initialised ? MPI_Finalize() : MPI_SUCCESS;
    free(s);
    return rc == MPI_SUCCESS ? 0 : 1;
}

static void abort_job(void *self, int code) { MPI_Abort(((mpi_state *)self)->world, code); }

PLY_COMM_MPI_EXPORT ply_comm *ply_comm_entry(uint16_t host_major, uint16_t host_minor, char *error, size_t error_size) {
    (void)host_minor;
    if (host_major != PLY_COMM_ABI_MAJOR) {
        snprintf(error, error_size, "libplycomm_mpi implements communicator ABI %d.%d; the host speaks %u.x",
                 PLY_COMM_ABI_MAJOR, PLY_COMM_ABI_MINOR, (unsigned)host_major);
        return NULL;
    }
    mpi_state *s = calloc(1, sizeof *s);
    static ply_comm comm;
    if (!s) {
        snprintf(error, error_size, "libplycomm_mpi: out of memory");
        return NULL;
    }
    int initialised = 0, finalised = 0, provided = 0;
    MPI_Finalized(&finalised);
    if (finalised) {
        snprintf(error, error_size, "MPI was finalized in this process (a communicator was closed); "
                 "MPI cannot be initialised again: open one communicator per process");
        free(s);
        return NULL;
    }
    MPI_Initialized(&initialised);
    if (!initialised) {
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
        if (rc != MPI_SUCCESS) {
            snprintf(error, error_size, "MPI_Init_thread failed (error %d)", rc);
            free(s);
            return NULL;
        }
        s->we_initialised = 1;
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        snprintf(error, error_size, "this MPI provides thread level %d; Ply needs MPI_THREAD_SERIALIZED (%d)",
                 provided, MPI_THREAD_SERIALIZED);
        if (s->we_initialised) MPI_Finalize();
        free(s);
        return NULL;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &s->world);
    MPI_Comm_set_errhandler(s->world, MPI_ERRORS_RETURN);
    int rank = 0, size = 1, local_rank = 0, local_size = 1;
    MPI_Comm_rank(s->world, &rank);
    MPI_Comm_size(s->world, &size);
    MPI_Comm local;
    if (MPI_Comm_split_type(s->world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_rank(local, &local_rank);
        MPI_Comm_size(local, &local_size);
        MPI_Comm_free(&local);
    }
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    version[strcspn(version, ",\n")] = 0; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
    snprintf(s->engine, sizeof s->engine, "%s", version);
    comm = (ply_comm){
        .struct_size = sizeof(ply_comm),
        .abi_major = PLY_COMM_ABI_MAJOR,
        .abi_minor = PLY_COMM_ABI_MINOR,
        .self = s,
        .engine = s->engine,
        .rank = rank,
        .world_size = size,
        .local_rank = local_rank,
        .local_size = local_size,
        .allreduce_sum_f32 = allreduce_sum_f32,
        .iallreduce_sum_f32 = iallreduce_sum_f32,
        .test = test,
        .wait = wait,
        .broadcast = broadcast,
        .barrier = barrier,
        .last_error = last_error,
        .finalize = finalize,
        .abort = abort_job,
    };
    return &comm;
}
