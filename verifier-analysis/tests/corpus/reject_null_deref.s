# expect: reject NullDeref
*(u32 *)(r10 - 4) = 0
r2 = r10
r2 += -4
r1 = map[0] ll
call 1
r1 = *(u64 *)(r0 + 0)
r0 = 0
exit
