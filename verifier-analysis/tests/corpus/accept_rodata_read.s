# expect: accept
r1 = map[1][0]+4 ll
r0 = *(u32 *)(r1 + 0)
exit
