/*
 * libFuzzer harness for the user_activation plugin's C signature parser
 * (parse_signature / parse_type in Plugins/UserActivation/user_activation.c) and the
 * classification that turns a parsed signature into a call shape or an error message.
 *
 * The parser is static, so the plugin's source is compiled into this harness with
 * #include; the plugin file itself is unchanged. The fuzzed bytes are the text of the
 * `signature` attribute (as a C string: copied and NUL-terminated, so an embedded NUL
 * ends it early, as it would in the attribute).
 *
 * Build (scripts/fuzz does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -I Include Fuzz/signature/fuzz_signature.c -lffi -ldl -lm -o Fuzz/.build/fuzz_signature
 */
#include "../../Plugins/UserActivation/user_activation.c"

#include <stdio.h>

static char last_error[1024];

static void record_error(const ply_host *host, ply_status status, const char *message) {
    (void)host;
    (void)status;
    snprintf(last_error, sizeof last_error, "%s", message ? message : "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;

    ua_signature sig;
    const char *why = NULL;
    if (parse_signature(text, &sig, &why)) {
        /* A parsed signature must be self-consistent: NUL-terminated bases, a sane count. */
        if (sig.count < 1 || sig.count > UA_MAX_ARGS + 1 || memchr(sig.ret.base, 0, sizeof sig.ret.base) == NULL)
            __builtin_trap();
        for (int i = 0; i < sig.count; i++)
            if (memchr(sig.params[i].base, 0, sizeof sig.params[i].base) == NULL || sig.params[i].pointers < 0)
                __builtin_trap();
        ply_host host;
        memset(&host, 0, sizeof host);
        host.set_error = record_error;
        ply_layer layer;
        memset(&layer, 0, sizeof layer);
        layer.host = &host;
        ply_status st = classify(&layer, &sig, text);
        if (st == PLY_OK && (layer.arity < 1 || layer.arity > UA_MAX_ARGS)) __builtin_trap();
    } else if (why == NULL || why[0] == 0) {
        __builtin_trap(); /* every failure must say why */
    }
    free(text);
    return 0;
}
