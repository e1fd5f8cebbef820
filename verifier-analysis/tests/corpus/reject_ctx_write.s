# expect: reject ReadOnlyWrite
*(u32 *)(r1 + 0) = 0
r0 = 0
exit
