# expect: reject OutOfBounds
*(u32 *)(r10 - 4) = 0
r2 = r10
r2 += -4
r1 = map[0] ll
call 1
if r0 == 0 goto out
r1 = *(u64 *)(r0 + 12)
out:
r0 = 0
exit
