# expect: reject UninitStack
# kernel: accept
# why: privileged kernels let programs read uninitialised stack (allow_uninit_stack); those bytes are stale switch memory, so we refuse
r2 = r10
r2 += -4
r1 = map[0] ll
call 1
r0 = 0
exit
