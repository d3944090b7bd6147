# enet.mk — live play (src/live/) talks to Slippi Dolphin's spectator server over ENet 1.3
# (Debian libenet-dev; scripts/setup.sh installs it). Included by the Makefile (-include mk/*.mk).
EXTRA_LIBS += -lenet
