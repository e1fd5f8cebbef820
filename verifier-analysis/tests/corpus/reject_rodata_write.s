# expect: reject ReadOnlyWrite
r1 = map[1][0]+0 ll
*(u32 *)(r1 + 0) = 1
r0 = 0
exit
