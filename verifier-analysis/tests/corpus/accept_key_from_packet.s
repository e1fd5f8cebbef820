# expect: accept
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r3 = r1
r3 += 34
if r3 > r2 goto out
r2 = r1
r2 += 26
r1 = map[0] ll
call 1
if r0 == 0 goto out
r0 = *(u64 *)(r0 + 0)
r0 &= 1
exit
out:
r0 = 2
exit
