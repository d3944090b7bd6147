/* cmd_inspect.c — `cphil inspect [--json] FILE...`: one summary per replay (human, or one JSON
 * object per line with --json). A file that cannot be read is reported (its error, with the
 * byte offset) and the others are still read; the exit status is 1 if any file failed or was
 * truncated. Keys of --json are documented in docs/slp.md. */
#include "cli/opts.h"
#include "game/ids.h"

#include <string.h>

static const char *player_type_name(uint8_t t) {
    switch (t) {
    case 0: return "human";
    case 1: return "cpu";
    case 2: return "demo";
    default: return "empty";
    }
}

static const char *end_method_name(uint8_t m, uint32_t version) {
    if (version < cphil_slp_version(2, 0, 0)) return m == 3 ? "resolved" : m == 0 ? "unresolved" : "unknown";
    switch (m) {
    case 1: return "TIME!";
    case 2: return "GAME!";
    case 7: return "No Contest";
    case 6: return "target test end (undocumented 6)";
    case 9: return "home-run contest end (undocumented 9)";
    default: return "unknown";
    }
}

static void json_frames_or_null(cphil_json_out *j, bool ok, long long v) {
    if (ok) cphil_json_int(j, v);
    else cphil_json_null(j);
}

static void print_json(const char *path, const cphil_replay *r, const char *error) {
    cphil_json_out j;
    cphil_json_begin(&j, stdout);
    cphil_json_obj_open(&j);
    cphil_json_key(&j, "file");
    cphil_json_str(&j, path);
    if (!r) {
        static const char *const keys[] = {"version", "stage_id", "players", "frames", "frame_copies", "first_frame",
                                           "last_frame", "rollback_resends", "item_events", "end_method",
                                           "follower_ports", "is_pal", "metadata_last_frame"};
        for (size_t i = 0; i < CPHIL_ARRAY_LEN(keys); i++) {
            cphil_json_key(&j, keys[i]);
            cphil_json_null(&j);
        }
        cphil_json_key(&j, "error");
        cphil_json_str(&j, error);
        cphil_json_obj_close(&j);
        fputc('\n', stdout);
        return;
    }
    char ver[32];
    cphil_replay_version_string(r, ver, sizeof ver);
    bool gs = r->has_game_start;
    cphil_json_key(&j, "version");
    cphil_json_str(&j, gs ? ver : NULL);
    cphil_json_key(&j, "stage_id");
    json_frames_or_null(&j, gs, r->game.stage);
    cphil_json_key(&j, "stage_name");
    cphil_json_str(&j, gs ? cphil_stage_name(r->game.stage) : NULL);
    cphil_json_key(&j, "players");
    cphil_json_arr_open(&j);
    for (int i = 0; gs && i < CPHIL_SLP_PORTS; i++) {
        const cphil_player_info *p = &r->game.players[i];
        if (p->type == 3) continue;
        cphil_json_obj_open(&j);
        cphil_json_key(&j, "port");
        cphil_json_int(&j, p->port);
        cphil_json_key(&j, "character");
        cphil_json_int(&j, p->character_stored);
        cphil_json_key(&j, "character_name");
        cphil_json_str(&j, cphil_char_ext_name(p->character_stored));
        cphil_json_key(&j, "character_played"); /* differs only for < 1.6.0 Sheik starts */
        cphil_json_int(&j, p->character);
        cphil_json_key(&j, "type");
        cphil_json_str(&j, player_type_name(p->type));
        cphil_json_key(&j, "nametag");
        cphil_json_str(&j, p->nametag);
        cphil_json_key(&j, "netplay_name");
        cphil_json_str(&j, p->display_name[0] ? p->display_name : r->meta.players[i].netplay);
        cphil_json_key(&j, "connect_code");
        cphil_json_str(&j, p->connect_code[0] ? p->connect_code : r->meta.players[i].code);
        cphil_json_key(&j, "costume");
        cphil_json_int(&j, p->costume);
        cphil_json_key(&j, "team_id");
        if (r->game.teams) cphil_json_int(&j, p->team_id);
        else cphil_json_null(&j);
        cphil_json_obj_close(&j);
    }
    cphil_json_arr_close(&j);
    cphil_json_key(&j, "frames");
    cphil_json_uint(&j, r->n_frames);
    cphil_json_key(&j, "frame_copies");
    cphil_json_uint(&j, r->frame_copies);
    cphil_json_key(&j, "first_frame");
    json_frames_or_null(&j, r->n_frames > 0, r->first_frame);
    cphil_json_key(&j, "last_frame");
    json_frames_or_null(&j, r->n_frames > 0, r->last_frame);
    cphil_json_key(&j, "rollback_resends");
    cphil_json_uint(&j, r->rollback_resends);
    cphil_json_key(&j, "item_events");
    cphil_json_uint(&j, r->item_events);
    cphil_json_key(&j, "end_method");
    json_frames_or_null(&j, r->end.present, r->end.method);
    cphil_json_key(&j, "lras_initiator");
    json_frames_or_null(&j, r->end.present && r->end.has_lras && r->end.lras_initiator >= 0, r->end.lras_initiator);
    cphil_json_key(&j, "placements");
    if (r->end.present && r->end.has_placements) {
        cphil_json_arr_open(&j);
        for (int i = 0; i < CPHIL_SLP_PORTS; i++) cphil_json_int(&j, r->end.placements[i]);
        cphil_json_arr_close(&j);
    } else cphil_json_null(&j);
    cphil_json_key(&j, "follower_ports");
    cphil_json_arr_open(&j);
    for (int i = 0; i < CPHIL_SLP_PORTS; i++)
        if (r->follower_mask & (1u << i)) cphil_json_int(&j, i + 1);
    cphil_json_arr_close(&j);
    cphil_json_key(&j, "is_pal");
    if (gs) cphil_json_bool(&j, r->game.is_pal);
    else cphil_json_null(&j);
    cphil_json_key(&j, "duration_s");
    cphil_json_num(&j, r->n_frames / 60.0);
    cphil_json_key(&j, "raw_length");
    cphil_json_uint(&j, r->raw_length);
    cphil_json_key(&j, "in_progress");
    cphil_json_bool(&j, r->in_progress);
    cphil_json_key(&j, "truncated");
    cphil_json_bool(&j, r->truncated);
    cphil_json_key(&j, "damaged_at");
    json_frames_or_null(&j, r->damaged, (long long)r->damaged_at);
    cphil_json_key(&j, "warning");
    cphil_json_str(&j, r->damaged ? r->warning : NULL);
    cphil_json_key(&j, "metadata_last_frame");
    json_frames_or_null(&j, r->meta.present && r->meta.has_last_frame, r->meta.last_frame);
    cphil_json_key(&j, "metadata");
    if (r->meta.present) {
        cphil_json_obj_open(&j);
        cphil_json_key(&j, "start_at");
        cphil_json_str(&j, r->meta.start_at[0] ? r->meta.start_at : NULL);
        cphil_json_key(&j, "played_on");
        cphil_json_str(&j, r->meta.played_on[0] ? r->meta.played_on : NULL);
        cphil_json_key(&j, "console_nick");
        cphil_json_str(&j, r->meta.console_nick[0] ? r->meta.console_nick : NULL);
        cphil_json_obj_close(&j);
    } else cphil_json_null(&j);
    cphil_json_key(&j, "error");
    cphil_json_str(&j, error);
    cphil_json_obj_close(&j);
    fputc('\n', stdout);
}

/* The error itself goes to stderr only (once); the report says where the read stopped. */
static void print_human(const char *path, const cphil_replay *r, const char *error) {
    if (!r) return;
    printf("%s\n", path);
    char ver[32];
    cphil_replay_version_string(r, ver, sizeof ver);
    const cphil_game_info *g = &r->game;
    if (error) printf("  (read stopped at an error, on stderr; what was read before it:)\n");
    if (!r->has_game_start) {
        printf("  no Game Start read\n");
        return;
    }
    const char *sn = cphil_stage_name(g->stage);
    printf("  version %s, stage %u (%s), %s%s\n", ver, g->stage, sn ? sn : "unknown", g->is_pal ? "PAL" : "NTSC",
           g->has_scene && g->major_scene == 8 ? ", online" : "");
    for (int i = 0; i < CPHIL_SLP_PORTS; i++) {
        const cphil_player_info *p = &g->players[i];
        if (p->type == 3) continue;
        const char *cn = cphil_char_ext_name(p->character);
        printf("  P%u  %s (%u) %s", p->port, cn ? cn : "unknown", p->character, player_type_name(p->type));
        if (p->nametag[0]) printf(", nametag \"%s\"", p->nametag);
        const char *np = p->display_name[0] ? p->display_name : r->meta.players[i].netplay;
        const char *cc = p->connect_code[0] ? p->connect_code : r->meta.players[i].code;
        if (np[0]) printf(", netplay \"%s\"", np);
        if (cc[0]) printf(", code %s", cc);
        printf("\n");
    }
    if (r->n_frames)
        printf("  frames %u (%d..%d), copies %llu, rollback re-sends %llu\n", r->n_frames, r->first_frame, r->last_frame,
               (unsigned long long)r->frame_copies, (unsigned long long)r->rollback_resends);
    else printf("  no frames\n");
    printf("  item events %llu, followers:", (unsigned long long)r->item_events);
    if (!r->follower_mask) printf(" none");
    for (int i = 0; i < CPHIL_SLP_PORTS; i++)
        if (r->follower_mask & (1u << i)) printf(" P%d", i + 1);
    printf("\n");
    if (r->end.present) {
        printf("  game end: method %u (%s)", r->end.method, end_method_name(r->end.method, cphil_replay_version(r)));
        if (r->end.has_lras && r->end.lras_initiator >= 0) printf(", LRAS by P%d", r->end.lras_initiator + 1);
        if (r->end.has_placements) {
            printf(", placements");
            for (int i = 0; i < CPHIL_SLP_PORTS; i++)
                if (r->end.placements[i] >= 0) printf(" P%d:%d", i + 1, r->end.placements[i] + 1);
        }
        printf("\n");
    } else printf("  game end: none\n");
    double secs = r->n_frames / 60.0;
    printf("  duration %d:%04.1f (%u frames at 60 fps)%s%s\n", (int)(secs / 60), secs - 60 * (int)(secs / 60), r->n_frames,
           r->in_progress ? ", raw length 0 (still recording)" : "", r->truncated ? ", TRUNCATED" : "");
    if (r->damaged) printf("  DAMAGED at byte %llu: the frames before it are kept\n", (unsigned long long)r->damaged_at);
    if (r->meta.present) {
        printf("  metadata:");
        if (r->meta.start_at[0]) printf(" start %s", r->meta.start_at);
        if (r->meta.has_last_frame) printf(", last frame %d", r->meta.last_frame);
        if (r->meta.played_on[0]) printf(", played on %s", r->meta.played_on);
        if (r->meta.console_nick[0]) printf(", console \"%s\"", r->meta.console_nick);
        printf("\n");
    } else printf("  metadata: none\n");
}

static bool json;
static int nfiles;

static opt_def inspect_defs[] = {
    OPT_D("--json", OPT_FLAG, &json, NULL, 0, 0, "one JSON object per line (keys in docs/slp.md)"),
};

static opts_spec spec = {
    .cmd = "inspect",
    .usage = "[--json] FILE...",
    .about = "Summarize Slippi replays: version, stage, players, frames (with rollback copies), items,\n"
             "followers, game end, PAL, duration, metadata. A file that cannot be read gets its error on\n"
             "stderr (with --json also in its JSON line) and the others are still read; the exit status\n"
             "is 1 if any failed. A file damaged in the middle (bytes that are not events, such as a run\n"
             "of zeros) keeps the frames before the damage: a warning on stderr, not a failure.",
    .groups = {{NULL, inspect_defs, (int)CPHIL_ARRAY_LEN(inspect_defs)}},
    .positional_name = "FILE (one or more .slp replays)",
    .n_positional = &nfiles,
    .min_positional = 1,
};

int cmd_inspect(int argc, char **argv) {
    int failed = 0;
    /* the files are a subset of argv: room for all of them */
    const char **files = cphil_calloc((size_t)argc, sizeof *files);
    if (!files) {
        cli_error("inspect: out of memory");
        return CLI_EXIT_FAIL;
    }
    spec.positional = files;
    spec.positional_cap = argc;
    int pr = opts_parse(&spec, argc, argv);
    if (pr) {
        cphil_free(files);
        return opts_exit(pr);
    }
    for (int k = 0; k < nfiles; k++) {
        const char *path = files[k];
        cphil_replay *r = NULL;
        cphil_status st = cphil_slp_read_file(path, &r);
        const char *err = st ? cphil_last_error() : NULL;
        if (st) failed++;
        if (json) print_json(path, r, err);
        else print_human(path, r, err);
        if (st) cli_error("%s", err);
        else if (r && r->damaged) fprintf(stderr, "cphil: warning: %s\n", r->warning);
        fflush(stdout);
        cphil_replay_free(r);
    }
    cphil_free(files);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
