# expect: reject UninitStack
# kernel: accept
# why: privileged kernels let programs read uninitialised stack (allow_uninit_stack); those bytes are stale switch memory, so we refuse
*(u32 *)(r10 - 8) = 1
r0 = *(u64 *)(r10 - 8)
exit
