/* actions.c — the common action-state name table (ids 0..340).
 *
 * Implements: id -> name and name -> id for the action states every character shares. Does not
 * name the per-character states (ids >= 341: their meaning depends on the character) nor
 * categorise them. Reference: reference/slp_format.md section 11 (20 DASH, 27 JUMP_AERIAL_F,
 * 322 ENTRY), names after the game's internal action-state names.
 */
#include "game/actions.h"

#include <stdio.h>
#include <strings.h>

/* Sparse table: id, name. Ranges the game fills with many item/special variants (items 92-177,
 * captured/special states 266-321) are named only where they matter to a bot. */
typedef struct action_name {
    short id;
    const char *name;
} action_name;

static const action_name names[] = {
    {0, "DEAD_DOWN"}, {1, "DEAD_LEFT"}, {2, "DEAD_RIGHT"}, {3, "DEAD_UP"},
    {4, "DEAD_UP_STAR"}, {5, "DEAD_UP_STAR_ICE"}, {6, "DEAD_UP_FALL"}, {7, "DEAD_UP_FALL_HIT_CAMERA"},
    {8, "DEAD_UP_FALL_HIT_CAMERA_FLAT"}, {9, "DEAD_UP_FALL_ICE"}, {10, "DEAD_UP_FALL_HIT_CAMERA_ICE"},
    {11, "SLEEP"}, {12, "REBIRTH"}, {13, "REBIRTH_WAIT"}, {14, "WAIT"},
    {15, "WALK_SLOW"}, {16, "WALK_MIDDLE"}, {17, "WALK_FAST"}, {18, "TURN"}, {19, "TURN_RUN"},
    {20, "DASH"}, {21, "RUN"}, {22, "RUN_DIRECT"}, {23, "RUN_BRAKE"}, {24, "KNEE_BEND"},
    {25, "JUMP_F"}, {26, "JUMP_B"}, {27, "JUMP_AERIAL_F"}, {28, "JUMP_AERIAL_B"},
    {29, "FALL"}, {30, "FALL_F"}, {31, "FALL_B"}, {32, "FALL_AERIAL"}, {33, "FALL_AERIAL_F"},
    {34, "FALL_AERIAL_B"}, {35, "FALL_SPECIAL"}, {36, "FALL_SPECIAL_F"}, {37, "FALL_SPECIAL_B"},
    {38, "DAMAGE_FALL"}, {39, "SQUAT"}, {40, "SQUAT_WAIT"}, {41, "SQUAT_RV"}, {42, "LANDING"},
    {43, "LANDING_FALL_SPECIAL"}, {44, "ATTACK_11"}, {45, "ATTACK_12"}, {46, "ATTACK_13"},
    {47, "ATTACK_100_START"}, {48, "ATTACK_100_LOOP"}, {49, "ATTACK_100_END"}, {50, "ATTACK_DASH"},
    {51, "ATTACK_S3_HI"}, {52, "ATTACK_S3_HI_S"}, {53, "ATTACK_S3_S"}, {54, "ATTACK_S3_LW_S"},
    {55, "ATTACK_S3_LW"}, {56, "ATTACK_HI3"}, {57, "ATTACK_LW3"}, {58, "ATTACK_S4_HI"},
    {59, "ATTACK_S4_HI_S"}, {60, "ATTACK_S4_S"}, {61, "ATTACK_S4_LW_S"}, {62, "ATTACK_S4_LW"},
    {63, "ATTACK_HI4"}, {64, "ATTACK_LW4"}, {65, "ATTACK_AIR_N"}, {66, "ATTACK_AIR_F"},
    {67, "ATTACK_AIR_B"}, {68, "ATTACK_AIR_HI"}, {69, "ATTACK_AIR_LW"}, {70, "LANDING_AIR_N"},
    {71, "LANDING_AIR_F"}, {72, "LANDING_AIR_B"}, {73, "LANDING_AIR_HI"}, {74, "LANDING_AIR_LW"},
    {75, "DAMAGE_HI1"}, {76, "DAMAGE_HI2"}, {77, "DAMAGE_HI3"}, {78, "DAMAGE_N1"}, {79, "DAMAGE_N2"},
    {80, "DAMAGE_N3"}, {81, "DAMAGE_LW1"}, {82, "DAMAGE_LW2"}, {83, "DAMAGE_LW3"}, {84, "DAMAGE_AIR1"},
    {85, "DAMAGE_AIR2"}, {86, "DAMAGE_AIR3"}, {87, "DAMAGE_FLY_HI"}, {88, "DAMAGE_FLY_N"},
    {89, "DAMAGE_FLY_LW"}, {90, "DAMAGE_FLY_TOP"}, {91, "DAMAGE_FLY_ROLL"},
    {92, "LIGHT_GET"}, {93, "HEAVY_GET"},
    {178, "GUARD_ON"}, {179, "GUARD"}, {180, "GUARD_OFF"}, {181, "GUARD_SET_OFF"},
    {182, "GUARD_REFLECT"}, {183, "DOWN_BOUND_U"}, {184, "DOWN_WAIT_U"}, {185, "DOWN_DAMAGE_U"},
    {186, "DOWN_STAND_U"}, {187, "DOWN_ATTACK_U"}, {188, "DOWN_FOWARD_U"}, {189, "DOWN_BACK_U"},
    {190, "DOWN_SPOT_U"}, {191, "DOWN_BOUND_D"}, {192, "DOWN_WAIT_D"}, {193, "DOWN_DAMAGE_D"},
    {194, "DOWN_STAND_D"}, {195, "DOWN_ATTACK_D"}, {196, "DOWN_FOWARD_D"}, {197, "DOWN_BACK_D"},
    {198, "DOWN_SPOT_D"}, {199, "PASSIVE"}, {200, "PASSIVE_STAND_F"}, {201, "PASSIVE_STAND_B"},
    {202, "PASSIVE_WALL"}, {203, "PASSIVE_WALL_JUMP"}, {204, "PASSIVE_CEIL"},
    {205, "SHIELD_BREAK_FLY"}, {206, "SHIELD_BREAK_FALL"}, {207, "SHIELD_BREAK_DOWN_U"},
    {208, "SHIELD_BREAK_DOWN_D"}, {209, "SHIELD_BREAK_STAND_U"}, {210, "SHIELD_BREAK_STAND_D"},
    {211, "FURA_FURA"}, {212, "CATCH"}, {213, "CATCH_PULL"}, {214, "CATCH_DASH"},
    {215, "CATCH_DASH_PULL"}, {216, "CATCH_WAIT"}, {217, "CATCH_ATTACK"}, {218, "CATCH_CUT"},
    {219, "THROW_F"}, {220, "THROW_B"}, {221, "THROW_HI"}, {222, "THROW_LW"},
    {223, "CAPTURE_PULLED_HI"}, {224, "CAPTURE_WAIT_HI"}, {225, "CAPTURE_DAMAGE_HI"},
    {226, "CAPTURE_PULLED_LW"}, {227, "CAPTURE_WAIT_LW"}, {228, "CAPTURE_DAMAGE_LW"},
    {229, "CAPTURE_CUT"}, {230, "CAPTURE_JUMP"}, {231, "CAPTURE_NECK"}, {232, "CAPTURE_FOOT"},
    {233, "ESCAPE_F"}, {234, "ESCAPE_B"}, {235, "ESCAPE"}, {236, "ESCAPE_AIR"},
    {237, "REBOUND_STOP"}, {238, "REBOUND"}, {239, "THROWN_F"}, {240, "THROWN_B"},
    {241, "THROWN_HI"}, {242, "THROWN_LW"}, {243, "THROWN_LW_WOMEN"}, {244, "PASS"},
    {245, "OTTOTTO"}, {246, "OTTOTTO_WAIT"}, {247, "FLY_REFLECT_WALL"}, {248, "FLY_REFLECT_CEIL"},
    {249, "STOP_WALL"}, {250, "STOP_CEIL"}, {251, "MISS_FOOT"}, {252, "CLIFF_CATCH"},
    {253, "CLIFF_WAIT"}, {254, "CLIFF_CLIMB_SLOW"}, {255, "CLIFF_CLIMB_QUICK"},
    {256, "CLIFF_ATTACK_SLOW"}, {257, "CLIFF_ATTACK_QUICK"}, {258, "CLIFF_ESCAPE_SLOW"},
    {259, "CLIFF_ESCAPE_QUICK"}, {260, "CLIFF_JUMP_SLOW1"}, {261, "CLIFF_JUMP_SLOW2"},
    {262, "CLIFF_JUMP_QUICK1"}, {263, "CLIFF_JUMP_QUICK2"}, {264, "APPEAL_R"}, {265, "APPEAL_L"},
    {322, "ENTRY"}, {323, "ENTRY_START"}, {324, "ENTRY_END"}, {325, "DAMAGE_ICE"},
    {326, "DAMAGE_ICE_JUMP"},
};

const char *cphil_action_name(int id, char *buf, size_t bufsize) {
    /* The table is sorted by id: binary search. */
    size_t lo = 0, hi = sizeof names / sizeof names[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (names[mid].id == id) return names[mid].name;
        if (names[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    if (!buf || bufsize < 2) return "OTHER";
    if (id >= CPHIL_ACT_FIRST_CHARACTER_SPECIFIC) snprintf(buf, bufsize, "SPECIAL_%d", id);
    else snprintf(buf, bufsize, "ACTION_%d", id);
    return buf;
}

int cphil_action_from_name(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(names[i].name, name)) return names[i].id;
    return -1;
}
