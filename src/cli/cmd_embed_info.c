/* cmd_embed_info.c — `cphil embed-info`: print the embedding layout (blocks, offsets, widths,
 * total E, hash) as text, JSON (--json) or the feature tables of docs/embedding.md (--markdown). */
#include "cli/opts.h"
#include "game/embed.h"

#include <string.h>

static bool json, md, prev_action;

static opt_def ei_defs[] = {
    OPT_D("--json", OPT_FLAG, &json, NULL, 0, 0, "one JSON object"),
    OPT_D("--markdown", OPT_FLAG, &md, NULL, 0, 0, "the per-feature tables of docs/embedding.md"),
    OPT_D("--prev-action", OPT_FLAG, &prev_action, NULL, 0, 0, "the layout with the previous-controller features"),
};

static opts_spec spec = {
    .cmd = "embed-info",
    .usage = "[--json | --markdown] [--prev-action]",
    .about = "Prints the embedding layout: continuous groups and one-hot blocks with their dense\n"
             "offsets and widths, n_cont, n_ids, the total width E and the layout hash.",
    .groups = {{NULL, ei_defs, (int)CPHIL_ARRAY_LEN(ei_defs)}},
};

static void markdown(const cphil_embed_layout *L) {
    printf("| dense offset | block | feature | source field | scale and clamp | version |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int i = 0; i < L->n_cont; i++) {
        const cphil_embed_feature *f = cphil_embed_feature_info(L, i);
        const char *blk = "?";
        for (int b = 0; b < L->n_blocks; b++)
            if (L->blocks[b].kind == CPHIL_EMBED_CONT && i >= L->blocks[b].offset &&
                i < L->blocks[b].offset + L->blocks[b].width)
                blk = L->blocks[b].name;
        printf("| %d | %s | %s | %s | %s | %s |\n", i, blk, f->name, f->source, f->formula, f->version);
    }
    printf("\n| one-hot block | ids[k] | dense offset | width | vocabulary |\n|---|---|---|---|---|\n");
    for (int b = 0; b < L->n_blocks; b++) {
        const cphil_embed_block *bl = &L->blocks[b];
        if (bl->kind != CPHIL_EMBED_ONEHOT) continue;
        const char *voc = strstr(bl->name, "action") ? "action state 0..398 direct; 399 other (>= 399 or absent)"
                          : strstr(bl->name, "character") ? "internal character 0..32 direct; 33 other (absent)"
                          : strstr(bl->name, "stage") ? "external stage 0..32 direct; 33 other"
                                                      : "item type 0..125 direct; 126 other; 127 empty slot";
        printf("| %s | %d | %d | %d | %s |\n", bl->name, bl->id_index, bl->offset, bl->width, voc);
    }
    printf("\nn_cont %d, n_ids %d, E %d, hash %016llx\n", L->n_cont, L->n_ids, L->E, (unsigned long long)L->hash);
}

int cmd_embed_info(int argc, char **argv) {
    int r = opts_parse(&spec, argc, argv);
    if (r) return opts_exit(r);
    cphil_embed_config cfg = {0};
    cfg.prev_action = prev_action;
    cphil_embed_layout L;
    cphil_embed_layout_init(&L, &cfg);
    if (md) {
        markdown(&L);
        return CLI_EXIT_OK;
    }
    if (json) {
        cphil_json_out j;
        cphil_json_begin(&j, stdout);
        cphil_json_obj_open(&j);
        cphil_json_key(&j, "version");
        cphil_json_int(&j, CPHIL_EMBED_LAYOUT_VERSION);
        cphil_json_key(&j, "prev_action");
        cphil_json_bool(&j, cfg.prev_action);
        cphil_json_key(&j, "n_cont");
        cphil_json_int(&j, L.n_cont);
        cphil_json_key(&j, "n_ids");
        cphil_json_int(&j, L.n_ids);
        cphil_json_key(&j, "E");
        cphil_json_int(&j, L.E);
        char hx[20];
        snprintf(hx, sizeof hx, "%016llx", (unsigned long long)L.hash);
        cphil_json_key(&j, "hash");
        cphil_json_str(&j, hx);
        cphil_json_key(&j, "blocks");
        cphil_json_arr_open(&j);
        for (int b = 0; b < L.n_blocks; b++) {
            const cphil_embed_block *bl = &L.blocks[b];
            cphil_json_obj_open(&j);
            cphil_json_key(&j, "name");
            cphil_json_str(&j, bl->name);
            cphil_json_key(&j, "kind");
            cphil_json_str(&j, bl->kind == CPHIL_EMBED_CONT ? "continuous" : "one_hot");
            cphil_json_key(&j, "offset");
            cphil_json_int(&j, bl->offset);
            cphil_json_key(&j, "width");
            cphil_json_int(&j, bl->width);
            if (bl->kind == CPHIL_EMBED_CONT) {
                cphil_json_key(&j, "features");
                cphil_json_arr_open(&j);
                for (int i = 0; i < bl->width; i++)
                    cphil_json_str(&j, cphil_embed_feature_info(&L, bl->offset + i)->name);
                cphil_json_arr_close(&j);
            } else {
                cphil_json_key(&j, "id_index");
                cphil_json_int(&j, bl->id_index);
            }
            cphil_json_obj_close(&j);
        }
        cphil_json_arr_close(&j);
        cphil_json_obj_close(&j);
        fputc('\n', stdout);
        return CLI_EXIT_OK;
    }
    printf("embedding layout v%d%s: n_cont %d, n_ids %d, E %d, hash %016llx\n", CPHIL_EMBED_LAYOUT_VERSION,
           cfg.prev_action ? " (with --prev-action)" : "", L.n_cont, L.n_ids, L.E, (unsigned long long)L.hash);
    printf("  %-18s %-10s %6s %6s\n", "block", "kind", "offset", "width");
    for (int b = 0; b < L.n_blocks; b++) {
        const cphil_embed_block *bl = &L.blocks[b];
        printf("  %-18s %-10s %6d %6d\n", bl->name, bl->kind == CPHIL_EMBED_CONT ? "continuous" : "one-hot",
               bl->offset, bl->width);
    }
    printf("dense vector = [continuous %d | one-hot blocks %d] = %d (docs/embedding.md)\n", L.n_cont,
           L.E - L.n_cont, L.E);
    return CLI_EXIT_OK;
}
