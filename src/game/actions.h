/* actions.h — names of Melee's common action states (ids 0..340, shared by every character;
 * ids >= 341 are per character). Used by `inspect`, the synthetic game and the docs.
 * Names follow the game's own action-state naming (Wait, Dash, KneeBend, ...), upper-cased. */
#ifndef CPHIL_GAME_ACTIONS_H
#define CPHIL_GAME_ACTIONS_H

#include <stddef.h>

/* Action state ids the synthetic game and the embedding refer to. */
enum {
    CPHIL_ACT_DEAD_DOWN = 0,
    CPHIL_ACT_REBIRTH = 12,
    CPHIL_ACT_REBIRTH_WAIT = 13,
    CPHIL_ACT_WAIT = 14,
    CPHIL_ACT_WALK_MIDDLE = 16,
    CPHIL_ACT_TURN = 18,
    CPHIL_ACT_DASH = 20,
    CPHIL_ACT_RUN = 21,
    CPHIL_ACT_KNEE_BEND = 24,
    CPHIL_ACT_JUMP_F = 25,
    CPHIL_ACT_JUMP_B = 26,
    CPHIL_ACT_JUMP_AERIAL_F = 27,
    CPHIL_ACT_FALL = 29,
    CPHIL_ACT_LANDING = 42,
    CPHIL_ACT_ATTACK_11 = 44,
    CPHIL_ACT_ATTACK_S3_S = 53,
    CPHIL_ACT_ATTACK_AIR_N = 65,
    CPHIL_ACT_DAMAGE_N2 = 79,
    CPHIL_ACT_DAMAGE_FLY_N = 88,
    CPHIL_ACT_GUARD_ON = 178,
    CPHIL_ACT_GUARD = 179,
    CPHIL_ACT_GUARD_OFF = 180,
    CPHIL_ACT_GUARD_SET_OFF = 181,
    CPHIL_ACT_ENTRY = 322,
    CPHIL_ACT_FIRST_CHARACTER_SPECIFIC = 341
};

/* The name of action state `id` ("WAIT", "DASH", ...); a generic "ACTION_<id>" style name is
 * written into buf for ids without a common name (buf must hold 24 bytes; may be NULL, then
 * "OTHER" is returned for unnamed ids). Never NULL. */
const char *cphil_action_name(int id, char *buf, size_t bufsize);
/* The id of a common action-state name (case-insensitive), or -1. */
int cphil_action_from_name(const char *name);

#endif
