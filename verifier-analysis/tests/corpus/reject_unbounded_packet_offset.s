# expect: reject PointerArithmetic
r2 = *(u32 *)(r1 + 4)
r6 = *(u32 *)(r1 + 0)
call 5
r6 += r0
r0 = 0
exit
