/*
 * ply-plugin-check: loads a Ply layer plugin with a minimal host of its own
 * and checks it against the ABI (Include/ply/plugin.h) and, given golden
 * files, against PyTorch's numbers. Exit status: 0 when every check passes,
 * 1 when one fails, 2 on a usage error.
 *
 * Build with SwiftPM (`swift build`, product ply-plugin-check) or alone, from
 * the repository root, with every .c file of this directory:
 *   cc -std=c11 -O2 -IInclude Sources/PlyPluginCheck/[a-z]*.c -ldl -lm -lpthread -o ply-plugin-check
 */
#include "check.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: ply-plugin-check [--with LIB.so]... [--golden FILE]... [--golden-dir DIR] [--type NAME]\n"
    "                        [--threads N] [--no-fd] [--quiet] PLUGIN.so\n"
    "\n"
    "Loads PLUGIN.so with a minimal host and checks it against the Ply plugin ABI:\n"
    "  library     dlopen, ply_plugin_entry, same descriptor twice, refuses another ABI major\n"
    "  descriptor  sizes, versions, names, inputs, required callbacks, destroy(NULL)\n"
    "  golden      per case: create, infer_shape, parameters, forward, backward, buffers, leaks\n"
    "  gradients   backward against central differences (sampled elements)\n"
    "  errors      invalid attributes and wrong-rank inputs fail cleanly with a message\n"
    "  schema      attr_specs: unique identifier-like names, valid kinds and flags, defaults\n"
    "              that read as their kind, a doc line (ABI 1.2)\n"
    "  describe    on the sample shapes: succeeds, MACs >= 0, a valid window, children whose\n"
    "              shapes and parameters add up to the layer's, the same result twice (ABI 1.2)\n"
    "  layouts     eval_layouts and forward_layout both or neither; in evaluation mode on the\n"
    "              sample shapes: NCHW in every set eval_layouts gives, and forward_layout in each\n"
    "              offered NCHW16C combination equals forward (1e-5 relative), writes every\n"
    "              element and 0 in the padding lanes (ABI 1.7)\n"
    "\n"
    "  --with LIB.so     also load LIB.so, for layer types PLUGIN.so creates through\n"
    "                    host->create_layer (e.g. residual needs conv2d and batchnorm2d)\n"
    "  --golden FILE     a golden case (JSON, see Tests/PlyTests/Fixtures/golden/README.md)\n"
    "  --golden-dir DIR  every DIR/*.json whose \"op\" is a type of PLUGIN.so\n"
    "  --type NAME       check only the layer type NAME\n"
    "  --threads N       threads parallel_for runs chunks on, 1..8 (default 2; 1 runs every\n"
    "                    chunk on the calling thread, e.g. under an emulator without threads)\n"
    "  --no-fd           skip the central-difference (finite difference) gradient check\n"
    "  --quiet           print only failures and the summary\n"
    "  --help            this text\n"
    "\n"
    "Exit status: 0 all checks passed, 1 a check failed, 2 usage error.\n";

static int usage_error(const char *format, const char *arg) {
    fprintf(stderr, "ply-plugin-check: ");
    fprintf(stderr, format, arg);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The "op" of a golden file without parsing all of it (they reach megabytes):
 * the generator writes it near the start; otherwise the file is parsed. */
static bool peek_op(const char *path, char *op, size_t size) {
    char head[4096];
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = '\0';
    const char *p = strstr(head, "\"op\"");
    if (p && (p = strchr(p + 4, '"')) != NULL) {
        const char *e = strchr(p + 1, '"');
        if (e && (size_t)(e - p - 1) < size) {
            memcpy(op, p + 1, (size_t)(e - p - 1));
            op[e - p - 1] = '\0';
            return true;
        }
    }
    char err[300];
    jval *root = json_parse_file(path, err, sizeof err);
    const jval *v = json_get(root, "op");
    bool ok = v && v->kind == J_STR && strlen(v->str) < size;
    if (ok) snprintf(op, size, "%s", v->str);
    json_free(root);
    return ok;
}

static const type_info *plugin_type(const plugin_under_test *p, const char *name) {
    for (int i = 0; i < p->type_count; i++)
        if (strcmp(p->types[i].t.name, name) == 0) return &p->types[i];
    return NULL;
}

int main(int argc, char **argv) {
    const char *plugin_path = NULL, *golden_dir = NULL, *only_type = NULL;
    /* At most argc of each; on the stack, so that every early return frees nothing by hand. */
    const char *with[argc], *golden[argc];
    int n_with = 0, n_golden = 0;
    bool fd = true, quiet = false;
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool takes_value = !strcmp(a, "--with") || !strcmp(a, "--golden") || !strcmp(a, "--golden-dir") ||
                           !strcmp(a, "--type") || !strcmp(a, "--threads");
        if (takes_value && i + 1 >= argc) return usage_error("%s needs a value", a);
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage, stdout); return 0; }
        else if (!strcmp(a, "--with")) with[n_with++] = argv[++i];
        else if (!strcmp(a, "--golden")) golden[n_golden++] = argv[++i];
        else if (!strcmp(a, "--golden-dir")) {
            if (golden_dir) return usage_error("%s given twice", a);
            golden_dir = argv[++i];
        } else if (!strcmp(a, "--type")) only_type = argv[++i];
        else if (!strcmp(a, "--threads")) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > 8) return usage_error("--threads takes 1..8, not %s", argv[i]);
            threads = (int)n;
        } else if (!strcmp(a, "--no-fd")) fd = false;
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (a[0] == '-' && a[1]) return usage_error("unknown option %s", a);
        else if (plugin_path) return usage_error("one plugin at a time (also got %s)", a);
        else plugin_path = a;
    }
    if (!plugin_path) return usage_error("%s", "no PLUGIN.so given");

    /* Golden files: explicit ones, then the directory's, sorted by name. */
    int n_files = 0, n_explicit = n_golden;
    char **files = calloc((size_t)n_golden + 1, sizeof *files);
    for (int i = 0; i < n_golden; i++) files[n_files++] = strdup(golden[i]);
    if (golden_dir) {
        DIR *dir = opendir(golden_dir);
        if (!dir) {
            for (int f = 0; f < n_files; f++) free(files[f]);
            free(files);
            return usage_error("cannot open --golden-dir %s", golden_dir);
        }
        int start = n_files;
        for (struct dirent *e; (e = readdir(dir)) != NULL;) {
            size_t len = strlen(e->d_name);
            if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) continue;
            files = realloc(files, (size_t)(n_files + 1) * sizeof *files);
            files[n_files] = malloc(strlen(golden_dir) + len + 2);
            sprintf(files[n_files++], "%s/%s", golden_dir, e->d_name);
        }
        closedir(dir);
        qsort(files + start, (size_t)(n_files - start), sizeof *files, compare_names);
    }

    report_init(quiet);
    report_install_crash_handler();
    host_init(threads, 0x706c79u);
    plugin_under_test main_plugin = {.path = plugin_path};
    plugin_under_test *deps = calloc((size_t)n_with + 1, sizeof *deps);
    if (!check_library(&main_plugin) || !check_descriptor(&main_plugin, only_type)) {
        int status = only_type && main_plugin.plugin && main_plugin.type_count == 0 && !report_failures()
                         ? usage_error("the plugin has no layer type named %s", only_type)
                         : report_summary();
        unload_library(&main_plugin);
        for (int f = 0; f < n_files; f++) free(files[f]);
        free(files);
        free(deps);
        return status;
    }
    host_register_types(main_plugin.types, main_plugin.type_count);
    host_register_types(main_plugin.others, main_plugin.other_count);
    if (n_with) report_section("dependencies");
    for (int i = 0; i < n_with; i++)
        if (load_dependency(with[i], &deps[i])) host_register_types(deps[i].types, deps[i].type_count);

    /* Golden cases, in file order; error paths once per type, with its first case. */
    bool *has_case = calloc((size_t)main_plugin.type_count + 1, sizeof *has_case);
    for (int f = 0; f < n_files; f++) {
        char op[128], err[600];
        bool explicit_file = f < n_explicit;
        if (!explicit_file && (!peek_op(files[f], op, sizeof op) || !plugin_type(&main_plugin, op))) continue;
        golden_case c;
        if (!golden_load(files[f], &c, err, sizeof err)) {
            report_section("golden file %s", files[f]);
            report_fail("cannot read the golden case: %s", err);
            golden_free(&c);
            continue;
        }
        const type_info *ti = plugin_type(&main_plugin, c.op);
        if (!ti) {
            if (!only_type || !strcmp(only_type, c.op)) {
                report_section("golden file %s", files[f]);
                report_fail("%s: op \"%s\" is not a layer type of %s", c.name, c.op, plugin_path);
            }
            golden_free(&c);
            continue;
        }
        golden_check(ti, &c);
        if (!fd) report_skip("%s: central differences not run (--no-fd)", c.name);
        else if (!ti->t.backward) report_skip("%s: %s has no backward: no central differences", c.name, c.op);
        else {
            /* the golden parameters and buffers (eval-mode batch-norm reads its running statistics) */
            named_tensor *load = calloc((size_t)(c.n_params + c.n_buffers) + 1, sizeof *load);
            for (int i = 0; i < c.n_params; i++) load[i] = c.params[i];
            for (int i = 0; i < c.n_buffers; i++) load[c.n_params + i] = c.buffers[i];
            gradcheck(ti, c.name, &c.attrs.list, c.n_inputs, c.inputs, c.wants_grad, load, c.n_params + c.n_buffers,
                      c.train, c.grad_output.data ? &c.grad_output : NULL);
            free(load);
        }
        int index = (int)(ti - main_plugin.types);
        if (!has_case[index]) {
            ply_shape shapes[MAX_INPUTS];
            for (int i = 0; i < c.n_inputs; i++) shapes[i] = c.inputs[i].shape;
            check_error_paths(ti, c.name, &c.attrs, c.n_inputs, shapes);
            check_describe(ti, c.name, &c.attrs.list, c.n_inputs, shapes);
            check_layouts(ti, c.name, &c.attrs.list, c.n_inputs, shapes);
        }
        has_case[index] = true;
        golden_free(&c);
    }
    for (int i = 0; i < main_plugin.type_count; i++)
        if (!has_case[i]) check_without_golden(&main_plugin.types[i], fd);

    for (int i = 0; i < n_with; i++) unload_library(&deps[i]);
    unload_library(&main_plugin);
    for (int f = 0; f < n_files; f++) free(files[f]);
    free(files);
    free(has_case);
    free(deps);
    return report_summary();
}
